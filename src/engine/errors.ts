// Recovery errors of the engine shell, as Kafka Streams names them: what went wrong decides
// what the task manager does, so they are types, not message strings.

/**
 * A task's state in memory can no longer be trusted: a commit failed and its outcome is
 * unknown (the broker may have committed just before the connection broke), or its restore
 * did not finish. The task manager drops the task's memory and rebuilds it from Kafka (fence,
 * restore the changelog, rewind to the committed offsets), which is right either way.
 */
export class TaskCorruptedError extends Error {
  override readonly name = "TaskCorruptedError";
  constructor(
    readonly partitions: readonly number[],
    override readonly cause?: unknown,
  ) {
    super(`partition(s) ${partitions.join(",")} corrupted: ${describe(cause)}`);
  }
}

/**
 * Another owner took the task: opening its transactional id fenced ours. The task is closed
 * without a rebuild (re-opening would fence the new owner back); it is taken again only if a
 * later assignment still names it.
 */
export class TaskMigratedError extends Error {
  override readonly name = "TaskMigratedError";
  constructor(
    readonly partitions: readonly number[],
    override readonly cause?: unknown,
  ) {
    super(`partition(s) ${partitions.join(",")} migrated to another owner: ${describe(cause)}`);
  }
}

/** A join worker died with its shards' state: the process cannot go on; a restart restores from Kafka. */
export class FatalEngineError extends Error {
  override readonly name = "FatalEngineError";
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause ?? "no detail");
}
