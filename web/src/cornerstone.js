// The workspace's vendor bundle: Cornerstone3D (rendering, tools, the DICOM image loader) as one ES module, so the
// plain modules under cds/serving/ui/static/modules import it from ../dist/cornerstone.js without a bundler of
// their own. The loader's decode worker and its WASM codecs are built beside it by build.mjs.

export * as core from "@cornerstonejs/core";
export * as tools from "@cornerstonejs/tools";
export { default as dicomImageLoader } from "@cornerstonejs/dicom-image-loader";
