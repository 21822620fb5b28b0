// The data model as the field app uses it; mirrors internal/domain.
import type { Key } from './i18n';

export const VisitTopics = ['documents', 'health', 'school', 'work_training', 'housing', 'legal', 'basic_needs', 'other'];
export const ContactRequests = [
  'identity_documents', 'residence', 'residence_permit', 'pension_benefits', 'family_contact',
  'housing_on_release', 'work_training', 'health_addiction', 'legal_aid', 'other',
];
export const Genders = ['female', 'male', 'nonbinary', 'undisclosed'];
export const ConsentKinds = ['none', 'verbal', 'written'];
export const Settings = ['intra', 'extra'];
export const ServiceCategories = [
  'immigration', 'reception', 'minors', 'mediation', 'detainees', 'work_inclusion', 'health_addiction', 'other',
];
export const ReferralStatuses = ['draft', 'sent', 'accepted', 'in_progress', 'completed', 'declined', 'cancelled'];
export const OpenStatuses = ['draft', 'sent', 'accepted', 'in_progress'];

const transitions: Record<string, string[]> = {
  draft: ['sent', 'cancelled'],
  sent: ['accepted', 'declined', 'cancelled'],
  accepted: ['in_progress', 'completed', 'cancelled'],
  in_progress: ['completed', 'cancelled'],
};
const workerTransitions: Record<string, string[]> = {
  draft: ['sent', 'cancelled'],
  sent: ['cancelled'],
};

/** The statuses a user of role may move a referral to from status (internal/domain/referral.go). */
export function allowedMoves(role: string, from: string): string[] {
  return (role === 'supervisor' ? transitions : workerTransitions)[from] ?? [];
}

export const PERSON_CODE = /^[A-Z]-[0-9A-Z]{4,12}$/;

export type FieldKind = 'text' | 'textarea' | 'number' | 'date' | 'select' | 'multi' | 'relation' | 'relations';

export interface FieldSpec {
  name: string;
  kind: FieldKind;
  required?: boolean;
  /** Select values and the translation prefix of their labels. */
  values?: string[];
  prefix?: string;
}

export const personFields: FieldSpec[] = [
  { name: 'code', kind: 'text', required: true },
  { name: 'given_name', kind: 'text' },
  { name: 'family_name', kind: 'text' },
  { name: 'birth_year', kind: 'number' },
  { name: 'gender', kind: 'select', values: Genders, prefix: 'gender.' },
  { name: 'nationality', kind: 'text' },
  { name: 'languages', kind: 'text' },
  { name: 'consent', kind: 'select', values: ConsentKinds, prefix: 'consent.', required: true },
  { name: 'consent_date', kind: 'date' },
  { name: 'notes', kind: 'textarea' },
];

export const visitFields: FieldSpec[] = [
  { name: 'site', kind: 'relation', required: true },
  { name: 'visited_at', kind: 'date', required: true },
  { name: 'workers', kind: 'relations' },
  { name: 'households_met', kind: 'number' },
  { name: 'persons_met', kind: 'relations' },
  { name: 'topics', kind: 'multi', values: VisitTopics, prefix: 'topic.' },
  { name: 'needs', kind: 'textarea' },
  { name: 'actions', kind: 'textarea' },
  { name: 'follow_up_on', kind: 'date' },
  { name: 'notes', kind: 'textarea' },
];

export const contactFields: FieldSpec[] = [
  { name: 'person', kind: 'relation', required: true },
  { name: 'setting', kind: 'select', values: Settings, prefix: 'setting.', required: true },
  { name: 'site', kind: 'relation', required: true },
  { name: 'contacted_at', kind: 'date', required: true },
  { name: 'requests', kind: 'multi', values: ContactRequests, prefix: 'request.' },
  { name: 'actions', kind: 'textarea' },
  { name: 'next_steps', kind: 'textarea' },
  { name: 'follow_up_on', kind: 'date' },
  { name: 'notes', kind: 'textarea' },
];

export const referralFields: FieldSpec[] = [
  { name: 'person', kind: 'relation', required: true },
  { name: 'service', kind: 'relation', required: true },
  { name: 'reason', kind: 'textarea', required: true },
  { name: 'status', kind: 'select', values: ['draft', 'sent'], prefix: 'status.', required: true },
  { name: 'due_on', kind: 'date' },
  { name: 'notes', kind: 'textarea' },
];

export function label(prefix: string, value: string): Key {
  return (prefix + value) as Key;
}
