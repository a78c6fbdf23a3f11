/**
 * Builds complete server-to-client WebSocket frames (RFC 6455 §5.2: FIN set, unmasked) in one
 * buffer, so a broadcast is framed once and the same bytes go to every recipient. `ws` frames
 * per send() and does not export its framer in its types, hence these few lines. Part of the
 * seam (no engine imported): the protocol codecs frame a broadcast once, whatever the engine.
 */
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;

export function frameText(payload: string | Buffer): Buffer {
  if (typeof payload !== 'string') return frame(OPCODE_TEXT, payload);
  // Encoded straight into the frame: no intermediate buffer to allocate and copy.
  const length = Buffer.byteLength(payload, 'utf8');
  const out = frameWithRoom(OPCODE_TEXT, length);
  out.write(payload, out.length - length, 'utf8');
  return out;
}

export function frameBinary(payload: Buffer): Buffer {
  return frame(OPCODE_BINARY, payload);
}

function frame(opcode: number, payload: Buffer): Buffer {
  const out = frameWithRoom(opcode, payload.length);
  payload.copy(out, out.length - payload.length);
  return out;
}

/** A frame with its header written and `length` bytes left for the payload at its end. */
function frameWithRoom(opcode: number, length: number): Buffer {
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(headerLength + length);
  out[0] = 0x80 | opcode;
  if (length < 126) {
    out[1] = length;
  } else if (length < 65536) {
    out[1] = 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    out.writeUInt32BE(length >>> 0, 6);
  }
  return out;
}
