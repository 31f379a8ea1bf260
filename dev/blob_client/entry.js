// What a Next.js page imports for large uploads; bundled for the console's <script type=module>.
export { upload } from "@vercel/blob/client";
