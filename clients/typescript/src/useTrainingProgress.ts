/** A React hook for a Training screen: the model's progress, polled every 5 s until it ends. */
import { useEffect, useState } from "react";
import type { ApiError, Progress, SselfieClient } from "./client.js";
import { isTerminal, POLL_INTERVAL_MS, pollProgress } from "./progress.js";

export interface TrainingProgress {
  /** The last answer of GET /api/training/progress (null until the first one). */
  progress: Progress | null;
  /** The last error answer; cleared by the next good one. */
  error: ApiError | null;
  /** True once the status is completed, failed or canceled: polling has stopped. */
  done: boolean;
}

export function useTrainingProgress(
  client: SselfieClient,
  modelId: string | null,
  intervalMs: number = POLL_INTERVAL_MS,
): TrainingProgress {
  const [progress, setProgress] = useState<Progress | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    setProgress(null);
    setError(null);
    if (!modelId) return;
    return pollProgress(client, modelId, {
      intervalMs,
      onProgress: (next) => {
        setProgress(next);
        setError(null);
      },
      onError: setError,
    });
  }, [client, modelId, intervalMs]);
  return { progress, error, done: progress !== null && isTerminal(progress.status) };
}
