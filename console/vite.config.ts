// The console is served by the node at /console/ from ../build/console (node_api/http/console.py).
// Everything it needs is bundled: nothing is fetched from a CDN at run time.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../build/console",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    sourcemap: false,
  },
});
