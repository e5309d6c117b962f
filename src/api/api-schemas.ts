import { z } from 'zod';
import { ExperimentId } from '../experiments/schema.ts';

/** A point in time: ISO 8601 date or date-time with offset (e.g. 2025-03-01 or 2025-03-01T12:00:00Z). */
export const Instant = z
  .string()
  .refine(
    (s) =>
      /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(s) &&
      !Number.isNaN(Date.parse(s)),
    {
      message: 'expected an ISO 8601 date or date-time with offset, e.g. 2025-03-01 or 2025-03-01T12:00:00Z',
    },
  )
  .describe('ISO 8601 date or date-time (UTC unless an offset is given)');

export const toMs = (s: string | undefined): number | undefined =>
  s === undefined ? undefined : Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : s);

export const ExperimentParams = z.object({ id: ExperimentId });
export const RunId = z.string().regex(/^r\d{3,}$/, 'run ids look like r001');
export const RunParams = z.object({ id: ExperimentId, run: RunId });

export const ListQuery = z
  .object({
    text: z
      .string()
      .min(1)
      .optional()
      .describe('words that must all appear in id, title, description, project, PI, keywords or treatments'),
    chamber: z.string().min(1).optional(),
    variable: z.string().min(1).optional(),
    pi: z.string().min(1).optional().describe('principal investigator name (substring)'),
    from: Instant.optional().describe('experiments with a run overlapping [from, to]'),
    to: Instant.optional(),
  })
  .strict();

export const StartRunBody = z
  .object({ note: z.string().max(2000).optional() })
  .strict()
  .nullish();

export const CsvQuery = z
  .object({
    vars: z
      .string()
      .regex(/^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$/, 'comma-separated variable names')
      .optional()
      .describe('variables (default: all)'),
    chamber: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*$/, 'comma-separated chamber ids')
      .optional()
      .describe('chambers (default: all)'),
    from: Instant.optional(),
    to: Instant.optional(),
    qc: z.enum(['true', 'false']).default('true').describe('include the <var>_qc columns'),
  })
  .strict();

export const PreviewQuery = z
  .object({
    var: z.string().regex(/^[A-Za-z0-9_]+$/, 'a variable name'),
    points: z.coerce.number().int().min(2).max(10_000).default(500).describe('most buckets per chamber'),
    from: Instant.optional(),
    to: Instant.optional(),
  })
  .strict();

const Bucket = z.object({
  t: z.string(),
  n: z.number(),
  mean: z.number().nullable(),
  min: z.number().nullable(),
  max: z.number().nullable(),
});
export const PreviewReply = z.object({
  var: z.string(),
  units: z.string().nullable(),
  long_name: z.string().nullable(),
  records: z.number().describe('records in the time range'),
  bucket_records: z.number().describe('records per bucket'),
  chambers: z.record(z.string(), z.array(Bucket)),
});

export const ErrorReply = z.object({ error: z.string(), field: z.string().optional(), value: z.unknown().optional() });

export const RunReply = z.object({ run: z.string() }).passthrough();

// ---- run reports: completeness and treatment fidelity (src/api/routes/run-reports.ts) ----

export { FidelityReport as FidelityReply } from '../fidelity/report-schema.ts';

const CompletenessGap = z.object({
  start: z.string(),
  end: z.string(),
  slots: z.number().int(),
  cause: z.enum(['offline', 'bad_quality', 'not_received', 'unknown']),
});
/** The completeness report (src/experiments/completeness.ts, docs/experiments.md "Completeness report"). */
export const CompletenessReply = z.object({
  version: z.literal(1),
  file: z.string(),
  generated_at: z.string(),
  run: z.string().optional(),
  open: z.boolean().optional().describe('Computed while the run was still recording'),
  slots: z.number().int(),
  start: z.string().optional(),
  end: z.string().optional(),
  period_s: z.number().optional(),
  chambers: z.record(
    z.string(),
    z.object({
      variables: z.record(
        z.string(),
        z.object({
          expected: z.number().int(),
          measured: z.number().int(),
          uncertain: z.number().int(),
          held: z.number().int(),
          missing: z.object({
            total: z.number().int(),
            offline: z.number().int(),
            bad_quality: z.number().int(),
            not_received: z.number().int(),
            unknown: z.number().int(),
          }),
          completeness: z.number(),
          gaps: z.array(CompletenessGap),
          gaps_omitted: z.number().int().optional(),
        }),
      ),
    }),
  ),
  totals: z.object({
    expected: z.number().int(),
    measured: z.number().int(),
    held: z.number().int(),
    missing: z.number().int(),
    completeness: z.number(),
  }),
});

export const DeviationQuery = z
  .object({
    var: z
      .string()
      .regex(/^[A-Za-z0-9_]+$/, 'a variable name')
      .describe('a controlled variable (e.g. air_temperature)'),
    points: z.coerce.number().int().min(2).max(10_000).default(500).describe('most buckets per chamber'),
  })
  .strict();

const DeviationBucket = z.object({
  t: z.string(),
  n: z.number().int(),
  mean: z.number().nullable(),
  min: z.number().nullable(),
  max: z.number().nullable(),
});
export const DeviationReply = z.object({
  var: z.string(),
  units: z.string().nullable(),
  records: z.number().int(),
  bucket_records: z.number().int(),
  chambers: z
    .record(z.string(), z.object({ setpoint: z.string(), band: z.number(), buckets: z.array(DeviationBucket) }))
    .describe('Chambers where the variable is judged: value − setpoint per bucket (covered slots only)'),
});
/** `GET /api/alarms/history` query. */
export const AlarmHistoryQuery = z
  .object({
    since: Instant.optional().describe('only events at or after this time'),
    chamber: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*$/, 'a chamber id')
      .max(64)
      .optional()
      .describe('only this chamber'),
    limit: z.coerce.number().int().min(1).max(10_000).default(100).describe('most events returned, newest first'),
  })
  .strict();

/** `POST /api/alarms/:id/ack` body. */
export const AlarmAckBody = z
  .object({
    comment: z
      .string()
      .trim()
      .min(1, 'an acknowledgement needs a comment')
      .max(2000)
      .describe('Why / what is being done (kept with the alarm and in the audit log)'),
  })
  .strict();
export const AlarmParams = z.object({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_.-]{0,199}$/, 'alarm ids look like c1.deviation.air_temperature.1764650000000'),
});
