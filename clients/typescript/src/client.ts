/**
 * Typed calls to the SSELFIE backend. Every path, parameter and answer comes from `schema.d.ts`,
 * generated from the backend's openapi.json (`npm run generate`); a call the backend does not
 * serve, or a field it does not send, is a type error.
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type Schemas = components["schemas"];
export type ApiError = Schemas["Error"];
export type Model = Schemas["Model"];
export type Progress = Schemas["Progress"];
export type TrainingStatus = Progress["status"];
export type Generation = Schemas["Generation"];
export type SselfieClient = Client<paths>;

export interface ClientOptions {
  /** "" when the backend shares the app's origin (one Vercel project), else its URL. */
  baseUrl?: string;
  /** The signed-in user's JWT, asked before every request (so it may be refreshed). */
  token: () => string | null | Promise<string | null>;
}

/** A client whose every request carries `Authorization: Bearer <token()>`. */
export function createSselfieClient({ baseUrl = "", token }: ClientOptions): SselfieClient {
  const client = createClient<paths>({ baseUrl });
  const bearer: Middleware = {
    async onRequest({ request }) {
      const jwt = await token();
      if (jwt) request.headers.set("Authorization", `Bearer ${jwt}`);
      return request;
    },
  };
  client.use(bearer);
  return client;
}
