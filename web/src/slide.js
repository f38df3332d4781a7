// The slide viewer's vendor bundle: OpenSeadragon (Deep Zoom tiles, pan and zoom) as one ES module, imported by
// cds/serving/ui/static/modules/slide_osd.js from ../dist/slide.js. Its navigation button images are not used
// (the workspace draws its own controls), so nothing else is copied.

export { default as OpenSeadragon } from "openseadragon";
