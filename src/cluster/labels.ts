import { ValidateBy, ValidationOptions } from 'class-validator';

/**
 * An agent's labels: what the operator says about it ({"site": "eu-1", "tier": "db"}). Lists filter
 * on them (`?label=site=eu-1`) and upgrades target by them (`target: {"labels": {...}}`).
 *
 * The rules, Kubernetes-like but smaller:
 * - at most MAX_LABELS labels per agent;
 * - a key is 1-63 characters of lower-case letters, digits, ".", "_", "/" and "-", beginning and
 *   ending with a letter or a digit (`site`, `tier`, `acme.com/rack`);
 * - a value is 1-63 characters of letters (either case), digits, ".", "_" and "-"; never empty, so
 *   `site=` is a mistake rather than a label without a value.
 *
 * Values compare exactly (case-sensitive); keys are lower-case already.
 */
export type AgentLabels = Record<string, string>;

export const MAX_LABELS = 32;
export const LABEL_KEY = /^[a-z0-9](?:[a-z0-9._/-]{0,61}[a-z0-9])?$/;
export const LABEL_VALUE = /^[A-Za-z0-9._-]{1,63}$/;

export const LABEL_KEY_RULE =
  'a label key must be 1-63 lower-case letters, digits, ".", "_", "/" or "-", beginning and ending with a letter or digit';
export const LABEL_VALUE_RULE = 'a label value must be 1-63 letters, digits, ".", "_" or "-"';

/** What is wrong with the value of a well-formed key, in words naming it under `field` (`labels.site must be ...`); null when it is fine. */
export function labelValueProblem(field: string, key: string, value: unknown): string | null {
  if (typeof value !== 'string') return `${field}.${key} must be a string: ${LABEL_VALUE_RULE}`;
  if (!LABEL_VALUE.test(value)) {
    return `${field}.${key} must be 1-63 letters, digits, ".", "_" or "-" (was ${JSON.stringify(value.slice(0, 80))})`;
  }
  return null;
}

/** Every problem of a label map given as `field`; empty when it is a valid map. */
export function labelsProblems(field: string, value: unknown): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [`${field} must be an object of label keys to values, such as {"site": "eu-1"} ({} for none)`];
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_LABELS) return [`${field} must hold at most ${MAX_LABELS} labels (has ${entries.length})`];
  const badKeys = entries.map(([k]) => k).filter((k) => !LABEL_KEY.test(k));
  return [
    ...(badKeys.length
      ? [
          `${field} has keys that are not label keys: ${badKeys.map((k) => JSON.stringify(k.slice(0, 80))).join(', ')} (${LABEL_KEY_RULE})`,
        ]
      : []),
    ...entries
      .filter(([k]) => LABEL_KEY.test(k))
      .map(([k, v]) => labelValueProblem(field, k, v))
      .filter((p): p is string => p !== null),
  ];
}

/**
 * A label map (`labels`), checked by labelsProblems. Its message names each bad label by its path
 * under the field ("labels.site must be ...", "target.labels.site must be ...").
 */
export const IsLabels = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isLabels',
      validator: {
        validate: (value) => labelsProblems('labels', value).length === 0,
        defaultMessage: (args) => labelsProblems(args?.property ?? 'labels', args?.value).join('; '),
      },
    },
    options,
  );

/** A selector as a query string writes it: `site=eu-1`, the key up to the first "=". Null when malformed. */
export function parseLabelSelector(text: string): { key: string; value: string } | null {
  const at = text.indexOf('=');
  if (at < 0) return null;
  const key = text.slice(0, at);
  const value = text.slice(at + 1);
  return LABEL_KEY.test(key) && LABEL_VALUE.test(value) ? { key, value } : null;
}

/**
 * The label map several selectors ask for together (every one must match), or the problem with
 * them in words naming `field`: a malformed one, too many, or one key asked with two values
 * (no agent has both).
 */
export function parseLabelSelectors(
  field: string,
  texts: string[],
): { labels: AgentLabels; problem?: undefined } | { labels?: undefined; problem: string } {
  if (texts.length > MAX_LABELS)
    return { problem: `give at most ${MAX_LABELS} ${field} selectors (gave ${texts.length})` };
  const labels: AgentLabels = {};
  for (const text of texts) {
    const selector = parseLabelSelector(text);
    if (!selector) {
      return {
        problem: `${field} must be key=value, such as site=eu-1 (was ${JSON.stringify(text.slice(0, 80))}): ${LABEL_KEY_RULE}; ${LABEL_VALUE_RULE}`,
      };
    }
    const before = labels[selector.key];
    if (before !== undefined && before !== selector.value) {
      return {
        problem: `${field} asks ${selector.key} to be both ${before} and ${selector.value}; an agent has one value per key`,
      };
    }
    labels[selector.key] = selector.value;
  }
  return { labels };
}

/** Whether an agent's labels include every pair of the selector (an empty selector matches every agent). */
export function matchesLabels(agentLabels: AgentLabels | null | undefined, selector: AgentLabels): boolean {
  const own = agentLabels ?? {};
  return Object.entries(selector).every(([key, value]) => Object.hasOwn(own, key) && own[key] === value);
}

/** Whether two label maps hold the same pairs, in whatever order. */
export function sameLabels(a: AgentLabels | null | undefined, b: AgentLabels | null | undefined): boolean {
  const x = a ?? {};
  const y = b ?? {};
  return Object.keys(x).length === Object.keys(y).length && matchesLabels(x, y);
}

/** `site=eu-1, tier=db`: a selector in words, in the order it was given. */
export function describeLabels(labels: AgentLabels): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(', ');
}
