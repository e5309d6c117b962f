import { z } from 'zod';
import { AlarmClass } from './model.ts';

/**
 * One webhook of `alarms.webhooks` in the instance configuration: alarm events of the
 * listed classes are POSTed as JSON to `url`, retried with backoff, and written to the
 * dead-letter log after `max_attempts` (docs/alarms.md).
 */
export const Webhook = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*$/, 'webhook names are lower-case letters, digits, - and _')
      .describe('Name of the webhook (logs, metrics, dead-letter entries)'),
    url: z
      .string()
      .regex(/^https?:\/\/\S+$/, 'webhook URLs look like https://host/path')
      .describe('Where alarm events are POSTed as JSON (http:// or https://)'),
    classes: z
      .array(AlarmClass)
      .min(1)
      .default(['deviation', 'stale', 'offline', 'plc_alarm', 'door_open'])
      .describe('Alarm classes sent to this webhook (default: all)'),
    events: z
      .array(z.enum(['raised', 'acknowledged', 'cleared']))
      .min(1)
      .default(['raised', 'acknowledged', 'cleared'])
      .describe('Lifecycle events sent (default: raised, acknowledged, cleared)'),
    secret_env: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .optional()
      .describe(
        'Environment variable holding a shared secret: each request carries X-Octopus-Signature: sha256=<HMAC-SHA256 of the body>',
      ),
    timeout_ms: z.number().int().min(100).max(120_000).default(5000).describe('Timeout of one delivery attempt, ms'),
    max_attempts: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(8)
      .describe('Attempts before an event goes to the dead-letter log'),
    backoff_ms: z
      .number()
      .int()
      .min(10)
      .max(3_600_000)
      .default(1000)
      .describe('Delay before the first retry, doubled after each failure (capped at 5 min)'),
  })
  .strict();
export type Webhook = z.infer<typeof Webhook>;

export const Webhooks = z.array(Webhook).default([]);
