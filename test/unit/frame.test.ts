import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { frameBinary, frameText } from '../../src/transport/frame.js';

interface FrameReceiver {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  write(chunk: Buffer): void;
}
// ws ships its frame parser, but its type definitions do not declare it.
const { Receiver } = createRequire(import.meta.url)('ws') as { Receiver: new (options: { isServer: boolean }) => FrameReceiver };

/** Parses frames with ws's own client-side receiver, as a browser-grade peer would. */
function receive(frame: Buffer): { data: Buffer; isBinary: boolean } {
  const receiver = new Receiver({ isServer: false });
  let got: { data: Buffer; isBinary: boolean } | undefined;
  receiver.on('message', (data: Buffer, isBinary: boolean) => (got = { data, isBinary }));
  receiver.on('error', (err: Error) => assert.fail(err));
  receiver.write(frame);
  assert.ok(got, 'the receiver got no whole message out of the frame');
  return got;
}

// Each length form of RFC 6455 §5.2 at its edges: 7-bit, 16-bit and 64-bit lengths.
const LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 70000];

describe('WebSocket frames', () => {
  it('a text frame carries the string at every length form', () => {
    for (const length of LENGTHS) {
      const text = 'x'.repeat(length);
      const got = receive(frameText(text));
      assert.equal(got.isBinary, false, `length ${length}`);
      assert.equal(got.data.toString('utf8'), text, `length ${length}`);
    }
  });

  it('a text frame counts UTF-8 bytes, not characters, in its length', () => {
    // 2-, 3- and 4-byte characters; 42 of them straddle the 7-bit/16-bit boundary (≈ 126 bytes).
    for (const text of ['é'.repeat(63), '€'.repeat(42), '😀'.repeat(40), `${'a'.repeat(65533)}é`]) {
      const frame = frameText(text);
      assert.equal(receive(frame).data.toString('utf8'), text);
    }
  });

  it('a text frame of bytes and a binary frame carry them unchanged', () => {
    for (const length of LENGTHS) {
      const bytes = Buffer.alloc(length, 7);
      assert.deepEqual(receive(frameText(bytes)), { data: bytes, isBinary: false });
      assert.deepEqual(receive(frameBinary(bytes)), { data: bytes, isBinary: true });
    }
  });
});
