/** Data-aware scheduling, the decision: due once every listed dataset has a version newer than the one consumed. */
import type { DatasetWait } from '../store/dataset-schedules.ts'

export function datasetScheduleDue(waits: readonly DatasetWait[]): boolean {
  return waits.length > 0 && waits.every((w) => w.latest > w.consumed)
}
