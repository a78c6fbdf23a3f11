/**
 * Builds complete server-to-client WebSocket frames (RFC 6455 §5.2: FIN set, unmasked) in one
 * buffer, so a broadcast is framed once and the same bytes go to every recipient. `ws` frames
 * per send() and does not export its framer in its types, hence these few lines.
 */
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;

export function frameText(payload: string | Buffer): Buffer {
  return frame(OPCODE_TEXT, typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload);
}

export function frameBinary(payload: Buffer): Buffer {
  return frame(OPCODE_BINARY, payload);
}

function frame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
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
  payload.copy(out, headerLength);
  return out;
}
