/** Polling a training's progress until it ends: the loop behind `useTrainingProgress`. */
import type { ApiError, Progress, SselfieClient, TrainingStatus } from "./client.js";

/** How often a Training screen asks: the interval the progress endpoint is built for. */
export const POLL_INTERVAL_MS = 5000;
const TERMINAL: ReadonlySet<TrainingStatus> = new Set(["completed", "failed", "canceled"]);

export function isTerminal(status: TrainingStatus): boolean {
  return TERMINAL.has(status);
}

export interface PollOptions {
  onProgress: (progress: Progress) => void;
  /** An error answer (the poll goes on) or a network failure (`code: "network_error"`). */
  onError?: (error: ApiError) => void;
  intervalMs?: number;
}

/** Ask now, then every `intervalMs` until a terminal status; returns a function that stops. */
export function pollProgress(
  client: SselfieClient,
  modelId: string,
  { onProgress, onError, intervalMs = POLL_INTERVAL_MS }: PollOptions,
): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ask = async (): Promise<void> => {
    const answer = await client
      .GET("/api/training/progress", { params: { query: { modelId } } })
      .catch(() => ({ data: undefined, error: { error: "Network failure", code: "network_error" } }));
    if (stopped) return;
    if (answer.data) {
      onProgress(answer.data);
      if (isTerminal(answer.data.status)) return;
    } else if (answer.error) {
      onError?.(answer.error);
    }
    timer = setTimeout(ask, intervalMs);
  };
  void ask();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
