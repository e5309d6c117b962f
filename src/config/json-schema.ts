import { z } from 'zod';
import { Config } from './instance-schema.ts';
import { Profile } from './profile-schema.ts';

/**
 * JSON Schemas of the configuration and profile files, generated from the zod schemas
 * (input side: fields with defaults are optional), for editor completion via
 * `# yaml-language-server: $schema=…`.
 */
export function jsonSchemas(): Record<string, unknown> {
  const make = (schema: z.ZodType, id: string, title: string) => ({
    $id: id,
    title,
    ...z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }),
  });
  return {
    'octopus-config.schema.json': make(
      Config,
      'octopus-config.schema.json',
      'Octopus device instances and gateway configuration (config/*.yaml)',
    ),
    'octopus-profile.schema.json': make(
      Profile,
      'octopus-profile.schema.json',
      'Octopus device profile (drivers/<kind>/<vendor>-<model>.yaml)',
    ),
  };
}
