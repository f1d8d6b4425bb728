// A worker that hands its batch straight back: what the thread hop alone costs.
export default function echo(batch: unknown[]): number {
  return batch.length;
}
