// Build the workspace's vendor bundle into cds/serving/ui/static/dist (git-ignored), served at /ui/dist/:
//   cornerstone.js              Cornerstone3D core, tools and the DICOM image loader (src/cornerstone.js)
//   decodeImageFrameWorker.js   the loader's decode worker; the bundle starts it from
//                               new URL("./decodeImageFrameWorker.js", import.meta.url), i.e. from this folder
//   slide.js                    OpenSeadragon for the slide viewer (src/slide.js)
//   codecs/*.wasm               the worker's WASM codecs (JPEG, JPEG-LS, JPEG 2000, HTJ2K), fetched from this
//                               folder, never from a CDN: the workspace works offline
//   BUILD.json                  what was built, from which lock (the Makefile's stamp)
// Usage: npm ci && npm run build   (make setup does both when the lock or these sources change)

import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "cds", "serving", "ui", "static", "dist");
const modules = join(here, "node_modules");
const loaderDir = join(modules, "@cornerstonejs", "dicom-image-loader");
const loaderRequire = createRequire(join(loaderDir, "package.json"));

// new URL("@cornerstonejs/codec-x/decodewasm", import.meta.url) in the decoders: a bare specifier that only a
// bundler with asset handling resolves. Point it at codecs/<file>.wasm next to the worker and copy the file there.
const CODEC_URL = /new URL\(\s*['"](@cornerstonejs\/codec-[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g;
const codecs = new Map();
const codecUrls = {
  name: "codec-urls",
  setup(build) {
    build.onLoad({ filter: /dicom-image-loader[\\/].*decoders[\\/].*\.js$/ }, (args) => {
      const source = readFileSync(args.path, "utf8").replace(CODEC_URL, (_, specifier) => {
        const file = loaderRequire.resolve(specifier);
        codecs.set(basename(file), file);
        return `new URL("./codecs/${basename(file)}", import.meta.url)`;
      });
      return { contents: source, loader: "js" };
    });
  },
};

// The workspace's Content-Security-Policy has no 'unsafe-inline' for styles, which blocks style *attributes*; the
// measurement drawings set two (a label's, a line's drop shadow). Set the same through the CSSOM or the SVG
// presentation attribute instead. A patch that no longer matches stops the build, so an upgrade is reviewed.
const STYLE_PATCHES = [
  [/drawingSvg[\\/]drawTextBox\.js$/, "textElement.setAttribute('style', combinedStyle);",
    "Object.assign(textElement.style, { userSelect: 'none', pointerEvents: 'none', "
    + "filter: `url(#shadow-${svgDrawingHelper.svgLayerElement.id})` });"],
  [/drawingSvg[\\/]drawLine\.js$/, "style: dropShadowStyle,", "filter: shadow ? `url(#shadow-${layerId})` : '',"],
  // OpenSeadragon injects a <style> (no focus outline on touch screens); styles.css holds the same rule.
  [/openseadragon[\\/]openseadragon\.js$/, "if (!document.querySelector('style[data-openseadragon-mobile-css]')) {",
    "if (false) {"],
];
const cspStyles = {
  name: "csp-styles",
  setup(build) {
    for (const [file, from, to] of STYLE_PATCHES) {
      build.onLoad({ filter: file }, (args) => {
        const source = readFileSync(args.path, "utf8");
        if (!source.includes(from)) throw new Error(`${args.path} changed: review the CSP patch`);
        return { contents: source.replace(from, to), loader: "js" };
      });
    }
  },
};

const common = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["chrome110", "firefox115", "safari16"],
  minify: true,
  sourcemap: false,
  legalComments: "linked",
  logLevel: "warning",
  // Emscripten glue mentions Node's modules behind runtime checks; the browser never takes that branch.
  external: ["fs", "path", "crypto", "url", "module", "worker_threads"],
  define: { "process.env.NODE_ENV": '"production"' },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "codecs"), { recursive: true });
await esbuild.build({
  ...common, entryPoints: { cornerstone: join(here, "src", "cornerstone.js") }, outdir: out, plugins: [codecUrls, cspStyles],
});
await esbuild.build({ ...common, entryPoints: { slide: join(here, "src", "slide.js") }, outdir: out, plugins: [cspStyles] });
await esbuild.build({
  ...common,
  entryPoints: { decodeImageFrameWorker: join(loaderDir, "dist", "esm", "decodeImageFrameWorker.js") },
  outdir: out,
  plugins: [codecUrls],
});
for (const [name, file] of codecs) copyFileSync(file, join(out, "codecs", name));
const lock = readFileSync(join(here, "package-lock.json"));
const versions = Object.fromEntries(["@cornerstonejs/core", "@cornerstonejs/tools", "@cornerstonejs/dicom-image-loader",
  "openseadragon"].map((name) => [name, JSON.parse(readFileSync(join(modules, name, "package.json"), "utf8")).version]));
writeFileSync(join(out, "BUILD.json"), `${JSON.stringify({
  versions, codecs: [...codecs.keys()].sort(), lock_sha256: createHash("sha256").update(lock).digest("hex"),
}, null, 2)}\n`);
console.log(`built ${out}: ${Object.entries(versions).map(([n, v]) => `${n}@${v}`).join(", ")}; ${codecs.size} codecs`);
