// Photos on the phone, before they are queued or sent: shrunk to a long side of about
// 1,600 px as JPEG (a 5 MB camera photo becomes a few hundred kB, which one bar of signal can
// carry), keeping the camera's EXIF block (the server reads the time and position it took the
// photo at as evidence), and the position the photo says it was taken at (exifr reads it).
"use strict";

const Photos = (() => {
  const LONG_SIDE = 1600;
  const QUALITY = 0.82;
  // A photo already this small and no longer than LONG_SIDE is sent as it is.
  const SMALL_BYTES = 400 * 1024;

  async function shrink(file) {
    if (!/^image\/(jpeg|png)$/.test(file.type)) return file;
    // Decoded upright (browsers apply the EXIF orientation), so the copy's EXIF is set to
    // "upright" below, or the server would turn it a second time.
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, LONG_SIDE / Math.max(bitmap.width, bitmap.height));
    if (scale === 1 && file.size <= SMALL_BYTES) { bitmap.close(); return file; }
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    const pen = canvas.getContext("2d");
    pen.imageSmoothingQuality = "high";
    pen.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const jpeg = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", QUALITY));
    if (!jpeg) return file;
    const exif = file.type === "image/jpeg" ? exifSegment(new Uint8Array(await file.arrayBuffer())) : null;
    const bytes = new Uint8Array(await jpeg.arrayBuffer());
    const named = (file.name || "photo").replace(/\.\w+$/, "") + ".jpg";
    return new File([exif ? withExif(bytes, exif) : bytes], named, { type: "image/jpeg" });
  }

  // The APP1 "Exif" segment of a JPEG (marker to end), or null. A JPEG is a run of segments
  // FFxx + 2-byte big-endian length until the scan (FFDA); no library offers taking one
  // segment from one file into another, and it is this short.
  function exifSegment(bytes) {
    let at = 2;
    if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
    while (at + 4 <= bytes.length && bytes[at] === 0xff) {
      const marker = bytes[at + 1];
      const length = (bytes[at + 2] << 8) | bytes[at + 3];
      if (marker === 0xda) return null;
      const isExif = marker === 0xe1 && String.fromCharCode(...bytes.subarray(at + 4, at + 8)) === "Exif";
      if (isExif) return upright(bytes.slice(at, at + 2 + length));
      at += 2 + length;
    }
    return null;
  }

  // The segment with its Orientation tag (IFD0, 0x0112) set to 1: the pixels are upright.
  function upright(segment) {
    const tiff = 10;  // FFE1, length, "Exif\0\0"
    const view = new DataView(segment.buffer, segment.byteOffset, segment.byteLength);
    const little = view.getUint16(tiff) === 0x4949;
    const ifd0 = tiff + view.getUint32(tiff + 4, little);
    if (ifd0 + 2 > segment.length) return segment;
    const entries = view.getUint16(ifd0, little);
    for (let i = 0; i < entries; i++) {
      const entry = ifd0 + 2 + i * 12;
      if (entry + 12 > segment.length) break;
      if (view.getUint16(entry, little) === 0x0112) view.setUint16(entry + 8, 1, little);
    }
    return segment;
  }

  // ``exif`` inserted after the JPEG's SOI and its JFIF APP0, where readers look for it.
  function withExif(jpeg, exif) {
    let at = 2;
    if (jpeg[2] === 0xff && jpeg[3] === 0xe0) at = 4 + ((jpeg[4] << 8) | jpeg[5]);
    const out = new Uint8Array(jpeg.length + exif.length);
    out.set(jpeg.subarray(0, at), 0);
    out.set(exif, at);
    out.set(jpeg.subarray(at), at + exif.length);
    return out;
  }

  // Where the photo says it was taken ({lat, lon} in WGS84), or null.
  async function position(file) {
    try {
      const gps = await exifr.gps(file);
      if (gps && Number.isFinite(gps.latitude) && Number.isFinite(gps.longitude)) {
        return { lat: gps.latitude, lon: gps.longitude };
      }
    } catch (_) { /* no EXIF, or not a JPEG: no position to offer */ }
    return null;
  }

  return { shrink, position };
})();
