import { z } from 'zod';
import { ToleranceOverrides } from '../fidelity/tolerance.ts';

/** Experiment ids are slugs: they name the folder on the NAS and appear in URLs and topics. */
export const ExperimentId = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$/,
    'experiment ids are slugs: 3–64 lower-case letters, digits and -, not starting or ending with -',
  );

const Person = z
  .object({
    name: z.string().min(1),
    email: z.string().email().optional(),
    orcid: z
      .string()
      .regex(/^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$/, 'ORCID iDs look like 0000-0002-1825-0097')
      .optional(),
    institution: z.string().optional(),
  })
  .strict();

export const Treatment = z
  .object({
    chamber: z.string().min(1),
    /** Short label, e.g. "elevated CO2". */
    name: z.string().min(1),
    description: z.string().optional(),
    /** Target setpoints of the treatment, tag → value (e.g. co2_setpoint: 700). */
    setpoints: z.record(z.string(), z.union([z.number(), z.boolean()])).default({}),
    /** Tolerances of this treatment by controlled variable (e.g. co2: {band: 50, min_duration_s: 300}), over the chamber's and the profile's. */
    tolerances: ToleranceOverrides.default({}),
  })
  .strict();
export type Treatment = z.infer<typeof Treatment>;

/** `metadata.yaml` of an experiment folder: the catalogue entry, edited by people and by the API. */
export const ExperimentMetadata = z
  .object({
    id: ExperimentId,
    title: z.string().min(3),
    description: z.string().default(''),
    principal_investigator: Person,
    contributors: z.array(Person).default([]),
    project: z.string().default(''),
    chambers: z.array(z.string().min(1)).min(1),
    /** Tag names archived; empty = every tag of the chambers' profiles. */
    variables: z.array(z.string().min(1)).default([]),
    treatments: z.array(Treatment).default([]),
    /** SPDX licence id of the data, e.g. CC-BY-4.0. */
    licence: z.string().default('CC-BY-4.0'),
    keywords: z.array(z.string()).default([]),
    /** Grid of the NetCDF files: one record every sampling_period_s. */
    sampling_period_s: z.number().positive().max(86_400).default(1),
    /** Suggested citation; generated when empty. */
    citation: z.string().optional(),
    created: z.string().datetime().optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    const seen = new Set<string>();
    e.chambers.forEach((c, i) => {
      if (seen.has(c))
        ctx.addIssue({ code: 'custom', path: ['chambers', i], message: `chamber "${c}" is listed twice` });
      seen.add(c);
    });
    e.treatments.forEach((t, i) => {
      if (!seen.has(t.chamber))
        ctx.addIssue({
          code: 'custom',
          path: ['treatments', i, 'chamber'],
          message: `chamber "${t.chamber}" is not one of the experiment's chambers (${e.chambers.join(', ')})`,
        });
    });
  });
export type ExperimentMetadata = z.infer<typeof ExperimentMetadata>;
export type ExperimentInput = z.input<typeof ExperimentMetadata>;

export const RunStatus = z.enum(['running', 'stopped']);

/** `runs/<run>/run.yaml`: one run of an experiment. */
export const Run = z
  .object({
    id: z.string().regex(/^r\d{3,}$/),
    experiment: ExperimentId,
    status: RunStatus,
    start: z.string().datetime(),
    stop: z.string().datetime().optional(),
    chambers: z.array(z.string()).min(1),
    sampling_period_s: z.number().positive(),
    /** Who or what started / stopped it: api:<user>, cli, mqtt, plc:<chamber>/<tag>. */
    started_by: z.string(),
    stopped_by: z.string().optional(),
    /** NetCDF file of the run, relative to the experiment folder. */
    file: z.string(),
    note: z.string().optional(),
  })
  .strict();
export type Run = z.infer<typeof Run>;
