export * from "./client.js";
export * from "./progress.js";
export * from "./useTrainingProgress.js";
