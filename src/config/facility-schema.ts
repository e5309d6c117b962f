import { z } from 'zod';

/**
 * The facility that runs Octopus: who publishes its data and how the files name it. These
 * values become the ACDD-1.3 global attributes of every run file and daily file
 * (institution, publisher, naming authority, platform, location…), so that an experiment
 * that gives only its id, title, principal investigator and chambers still yields files a
 * CF/ACDD checker accepts (docs/experiments.md, "Global attributes").
 */
export const FacilityConfig = z
  .object({
    institution: z
      .string()
      .min(1)
      .optional()
      .describe(
        'ACDD/CF institution: where the data were produced (e.g. "CNRS Ecotron Montpellier"). Default: the principal investigator\'s institution',
      ),
    naming_authority: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9]$/, 'naming_authority is a reverse-DNS name such as fr.cnrs.ecotron')
      .optional()
      .describe(
        'ACDD naming_authority: reverse-DNS name of the authority that makes the dataset ids unique (e.g. fr.cnrs.ecotron); the id attribute is <experiment>/<run>',
      ),
    publisher_name: z
      .string()
      .min(1)
      .optional()
      .describe('ACDD publisher_name: who distributes the data (a person, group or data service)'),
    publisher_email: z.string().email().optional().describe('ACDD publisher_email'),
    publisher_url: z.string().url().optional().describe('ACDD publisher_url: the facility or data service web page'),
    publisher_type: z
      .enum(['person', 'group', 'institution', 'position'])
      .default('institution')
      .describe('ACDD publisher_type'),
    publisher_institution: z.string().min(1).optional().describe('ACDD publisher_institution (default: institution)'),
    creator_type: z
      .enum(['person', 'group', 'institution', 'position'])
      .default('person')
      .describe('ACDD creator_type of the principal investigator named as creator'),
    licence: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Licence of the data when an experiment's metadata.yaml gives none (SPDX id, e.g. CC-BY-4.0); without it CC-BY-4.0",
      ),
    acknowledgement: z.string().min(1).optional().describe('ACDD acknowledgement: funding and support to cite'),
    program: z
      .string()
      .min(1)
      .optional()
      .describe('ACDD program: the overarching programme (e.g. a research infrastructure)'),
    platform: z
      .string()
      .min(1)
      .default('LABORATORY')
      .describe('ACDD platform: what the chambers are, in the platform_vocabulary'),
    platform_vocabulary: z.string().min(1).default('GCMD Platform Keywords').describe('ACDD platform_vocabulary'),
    instrument: z.string().min(1).optional().describe('ACDD instrument (e.g. "Climate chambers > Ecotron")'),
    instrument_vocabulary: z.string().min(1).optional().describe('ACDD instrument_vocabulary'),
    references: z.string().min(1).optional().describe('ACDD/CF references: publications describing the facility'),
    metadata_link: z.string().url().optional().describe("ACDD metadata_link: the facility's data catalogue"),
    location: z
      .object({
        latitude: z.number().min(-90).max(90).describe('Latitude of the facility, degrees_north (WGS 84)'),
        longitude: z.number().min(-180).max(180).describe('Longitude of the facility, degrees_east (WGS 84)'),
        altitude_m: z.number().optional().describe('Altitude above mean sea level, m'),
      })
      .strict()
      .optional()
      .describe('Where the chambers are: the ACDD geospatial_* attributes (left out when not configured)'),
  })
  .strict();
export type FacilityConfig = z.infer<typeof FacilityConfig>;
