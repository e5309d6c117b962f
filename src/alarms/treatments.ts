import type { ToleranceOverride } from '../fidelity/tolerance.ts';
import type { ExperimentStore, RunEvent } from '../experiments/store.ts';

/**
 * The treatment tolerances in force per chamber: those of the treatment of each chamber
 * in the experiment with a running run (metadata.yaml `treatments[].tolerances`). Read
 * again at each run start/stop and at most every `maxAgeMs` (metadata edited meanwhile).
 */
export class TreatmentTolerances {
  private byChamber = new Map<string, Record<string, ToleranceOverride>>();
  private readAt = -Infinity;
  private readonly onRun = (_e: RunEvent) => (this.readAt = -Infinity);

  constructor(
    private readonly store: ExperimentStore,
    private readonly now: () => number = Date.now,
    private readonly maxAgeMs = 5000,
  ) {
    store.on('run', this.onRun);
  }

  of(chamber: string): Record<string, ToleranceOverride> | undefined {
    if (this.now() - this.readAt >= this.maxAgeMs) this.read();
    return this.byChamber.get(chamber);
  }

  close(): void {
    this.store.off('run', this.onRun);
  }

  private read(): void {
    this.readAt = this.now();
    const next = new Map<string, Record<string, ToleranceOverride>>();
    for (const run of this.store.openRuns()) {
      const treatments = this.store.get(run.experiment).metadata.treatments;
      for (const chamber of run.chambers) {
        const t = treatments.find((x) => x.chamber === chamber);
        if (t && Object.keys(t.tolerances).length) next.set(chamber, t.tolerances);
      }
    }
    this.byChamber = next;
  }
}
