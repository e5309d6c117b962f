import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Config, MqttConfig, SpoolConfig } from '../../src/config/instance-schema.ts';
import type { LoadedConfig } from '../../src/config/loader.ts';
import { createLogger } from '../../src/core/log.ts';
import type { Sample } from '../../src/core/sample.ts';
import { Publisher } from '../../src/bus/publisher.ts';
import { Spool } from '../../src/bus/spool.ts';
import { Collector } from '../../src/collector/collector.ts';

const dirs: string[] = [];
export const scratch = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
export const cleanScratch = () => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));

/** A collector as `octopus collect` builds it, from a config document and a data folder. */
export function collector(
  doc: Record<string, unknown>,
  brokerUrl: string,
  dataDir = scratch('octopus-collector-'),
  env: NodeJS.ProcessEnv = {},
): { c: Collector; dataDir: string } {
  const config = Config.parse(doc);
  const loaded: LoadedConfig = { file: 'test.yaml', config, dataDir, profiles: new Map(), chambers: [] };
  const c = new Collector(loaded, brokerUrl, createLogger('collector-test'), env);
  c.start();
  return { c, dataDir };
}

/**
 * A gateway-side publisher fed with synthetic samples whose values are known: chamber
 * `c`, tags t0…t{n-1}, value = cycle + tag index / 100, one message per chamber per cycle.
 */
export function syntheticGateway(url: string, gw = 'gw-test') {
  const spool = Spool.open(scratch('octopus-gw-spool-'), SpoolConfig.parse({ fsync: 'never' }));
  const pub = new Publisher({ url, mqtt: MqttConfig.parse({}), gatewayId: gw, spool, log: createLogger('gw-test') });
  let cycle = 0;
  let sent = 0;
  const t0 = Date.now() - 3_600_000;
  return {
    pub,
    get sent() {
      return sent;
    },
    /** Publishes one cycle for each chamber; returns the samples. */
    cycle(chambers: string[], tags: number): Sample[] {
      const ts = t0 + cycle * 1000;
      const out: Sample[] = [];
      for (const chamber of chambers) {
        const samples: Sample[] = Array.from({ length: tags }, (_, i) => ({
          chamber,
          tag: `t${i}`,
          ts,
          value: cycle + i / 100,
          q: 'good' as const,
        }));
        pub.publishSamples(chamber, samples);
        out.push(...samples);
        sent += samples.length;
      }
      cycle++;
      return out;
    },
  };
}
