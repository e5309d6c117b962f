import { loadConfig } from '../config/loader.ts';

/** Placeholder until the runtime is wired: validates the configuration. */
export async function runUntilSignal(_mode: 'start' | 'simulate', file?: string): Promise<number> {
  loadConfig(file);
  return 0;
}
