"use strict";
(function () {
  var strings = {
    it: {
      title: "Strada",
      intro: "Servizio di sincronizzazione per il lavoro sociale di strada e il segretariato sociale in carcere. L'app per i dispositivi sul campo è in arrivo.",
      admin: "Amministrazione"
    },
    en: {
      title: "Strada",
      intro: "Sync service for street outreach and prison social-secretariat work. The field app is on its way.",
      admin: "Administration"
    }
  };
  function apply(lang) {
    var dict = strings[lang] || strings.it;
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach(function (el) {
      el.textContent = dict[el.getAttribute("data-i18n")];
    });
  }
  document.querySelectorAll("[data-lang]").forEach(function (b) {
    b.addEventListener("click", function () { apply(b.getAttribute("data-lang")); });
  });
  var pref = (navigator.language || "it").slice(0, 2);
  apply(strings[pref] ? pref : "it");
})();
