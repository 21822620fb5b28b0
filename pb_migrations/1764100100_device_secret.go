package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"

	"strada/internal/domain"
	"strada/internal/syncapi"
)

// The device credential: the SHA-256 of the secret a device receives at
// registration, with which a revoked device that is signed out still
// learns that it must wipe its data (docs/sync-protocol.md). The field is
// hidden: no users account reads it, filters on it or writes it through
// the records API.
func init() {
	m.Register(upDeviceSecret, downDeviceSecret)
}

func upDeviceSecret(app core.App) error {
	devices, err := app.FindCollectionByNameOrId(domain.Devices)
	if err != nil {
		return fmt.Errorf("find devices: %w", err)
	}
	devices.Fields.Add(&core.TextField{
		Name:    syncapi.DeviceSecretField,
		Hidden:  true,
		Max:     64,
		Pattern: `^[0-9a-f]{64}$`,
	})
	if err := app.Save(devices); err != nil {
		return fmt.Errorf("add device secret field: %w", err)
	}
	return nil
}

func downDeviceSecret(app core.App) error {
	devices, err := app.FindCollectionByNameOrId(domain.Devices)
	if err != nil {
		return fmt.Errorf("find devices: %w", err)
	}
	devices.Fields.RemoveByName(syncapi.DeviceSecretField)
	if err := app.Save(devices); err != nil {
		return fmt.Errorf("remove device secret field: %w", err)
	}
	return nil
}
