// A Studio screen: generate with a completed model, then poll the gallery every 2 s while any
// generation is still running. Type-checked by tsc (`make test`).
import { useEffect, useState } from "react";
import { type Generation, type SselfieClient } from "../src/index.js";

const RUNNING: ReadonlySet<Generation["status"]> = new Set(["starting", "processing"]);

export function StudioScreen({ api, modelId }: { api: SselfieClient; modelId: string }) {
  const [prompt, setPrompt] = useState("a portrait in the mountains at golden hour");
  const [gallery, setGallery] = useState<Generation[]>([]);
  const [asked, setAsked] = useState(0);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      const { data } = await api.GET("/api/studio/generations", {
        params: { query: { modelId } },
      });
      if (!data) return;
      setGallery(data.generations);
      if (data.generations.some((g) => RUNNING.has(g.status))) timer = setTimeout(load, 2000);
    };
    void load();
    return () => clearTimeout(timer);
  }, [api, modelId, asked]);

  async function generate() {
    const { error } = await api.POST("/api/studio/generate", {
      body: { modelId, prompt, numOutputs: 2, aspectRatio: "4:5" },
    });
    if (!error) setAsked((n) => n + 1); // model_not_ready (409) until its training completed
  }

  return (
    <section>
      <input value={prompt} onChange={(e) => setPrompt(e.target.value)} />
      <button onClick={generate}>Generate</button>
      {gallery.flatMap((g) => g.images.map((url) => <img key={url} src={url} alt={g.prompt} />))}
    </section>
  );
}
