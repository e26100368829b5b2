// Shared by the property tests: PROPERTY_SEED replays a run (fast-check prints the seed of any
// failure), PROPERTY_RUNS_SCALE multiplies every property's number of runs (soak: 10).
import { fc } from '@fast-check/ava';

const seed = process.env.PROPERTY_SEED;
if (seed !== undefined && seed !== '') fc.configureGlobal({ seed: Number(seed) });

const scale = Number(process.env.PROPERTY_RUNS_SCALE ?? 1);

/** `n` runs, scaled by PROPERTY_RUNS_SCALE. */
export function runs(n: number): number {
  return Math.max(1, Math.round(n * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}
