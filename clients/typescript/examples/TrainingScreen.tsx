// A Training screen as a v0 app would write it: large photos straight to Blob with the
// canonical upload() call, then a typed start and the progress hook. Type-checked by tsc
// (`make test`); @vercel/blob/client's upload is passed in, so this folder needs no Blob package.
import { useState } from "react";
import { createSselfieClient, type ApiError, useTrainingProgress } from "../src/index.js";

type Upload = (
  pathname: string,
  file: File,
  options: { access: "public"; handleUploadUrl: string; headers?: Record<string, string> },
) => Promise<{ url: string }>;

export function TrainingScreen({ token, upload }: { token: string; upload: Upload }) {
  const [api] = useState(() => createSselfieClient({ token: () => token }));
  const [modelId, setModelId] = useState<string | null>(null);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const { progress, error, done } = useTrainingProgress(api, modelId);

  async function train(files: File[]) {
    const blobs = await Promise.all(
      files.map((file) =>
        upload(file.name, file, {
          access: "public",
          handleUploadUrl: "/api/training/upload",
          headers: { Authorization: `Bearer ${token}` },
        }),
      ),
    );
    const { data, error } = await api.POST("/api/training/start", {
      params: { header: { "Idempotency-Key": crypto.randomUUID() } },
      body: { modelName: "Me", modelType: "flux", gender: "woman", imageUrls: blobs.map((b) => b.url) },
    });
    if (data) setModelId(data.modelId);
    else setFailure(error); // e.g. not_enough_images, naming the photos without one clear face
  }

  const minutes = progress?.etaSeconds ? Math.ceil(progress.etaSeconds / 60) : null;
  return (
    <section>
      <input type="file" accept="image/*" multiple onChange={(e) => train([...(e.target.files ?? [])])} />
      {progress && <progress max={100} value={progress.progress} />}
      {progress && <p>{progress.status}{minutes ? ` · about ${minutes} min left` : ""}</p>}
      {done && progress?.status === "failed" && <p>{progress.model.error}</p>}
      {(failure ?? error) && <p role="alert">{(failure ?? error)?.error}</p>}
    </section>
  );
}
