/** Environment variables win over the YAML; with neither, listeners stay on this host. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadConfig } from '../../src/config/loader.ts';

const clean: NodeJS.ProcessEnv = { OCTOPUS_CONFIG: '', OCTOPUS_DATA_DIR: '', OCTOPUS_MQTT_URL: '' };

describe('configuration from the environment', () => {
  it('the embedded default listens on loopback only: HTTP and the embedded broker', () => {
    const { config } = loadConfig(DEFAULT_CONFIG, clean);
    expect(config.http.host).toBe('127.0.0.1');
    expect(config.mqtt.broker.host).toBe('127.0.0.1');
  });

  it('OCTOPUS_HTTP_HOST and OCTOPUS_HTTP_PORT open the HTTP server on purpose', () => {
    const { config } = loadConfig(DEFAULT_CONFIG, {
      ...clean,
      OCTOPUS_HTTP_HOST: '0.0.0.0',
      OCTOPUS_HTTP_PORT: '9090',
    });
    expect(config.http).toMatchObject({ host: '0.0.0.0', port: 9090 });
  });

  it('a bad port from the environment is reported like a bad YAML value', () => {
    expect(() => loadConfig(DEFAULT_CONFIG, { ...clean, OCTOPUS_HTTP_PORT: 'eighty' })).toThrow(/http\.port/);
  });
});
