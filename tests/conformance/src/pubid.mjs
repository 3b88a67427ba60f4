// The gateway's public id layout (src/idcodec.h), re-implemented here only so the
// conformance run can map north session ids back to the fake backend's own ids and
// so check the listing against the backend's data independently of the gateway:
//
//   prefix + base32lower( version(1)=1 | field×3 | check(4) )
//   field = kind (0 raw, 1 packed lowercase hex) | len(1) | bytes
//   check = SHA-256(everything before it)[0..4)
//   fields: backend name, scope (AgentScope: agent id), native id (session id)

import crypto from 'node:crypto';

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

function b32encode(buf) {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const byte of buf) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += B32[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

function b32decode(s) {
  const out = [];
  let acc = 0;
  let bits = 0;
  for (const ch of s) {
    const v = B32.indexOf(ch);
    if (v < 0) return null;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 255);
    }
    acc &= (1 << bits) - 1;
  }
  return Buffer.from(out);
}

const packable = (s) => s.length > 0 && s.length % 2 === 0 && /^[0-9a-f]+$/.test(s);

export function encodePubId(prefix, backend, scope, native) {
  const parts = [Buffer.from([1])];
  for (const f of [backend, scope, native]) {
    if (packable(f)) {
      const b = Buffer.from(f, 'hex');
      parts.push(Buffer.from([1, b.length]), b);
    } else {
      const b = Buffer.from(f, 'utf8');
      parts.push(Buffer.from([0, b.length]), b);
    }
  }
  const body = Buffer.concat(parts);
  const check = crypto.createHash('sha256').update(body).digest().subarray(0, 4);
  return prefix + b32encode(Buffer.concat([body, check]));
}

// {backend, scope, native}, or null when id is not in that layout.
export function decodePubId(prefix, id) {
  if (typeof id !== 'string' || !id.startsWith(prefix)) return null;
  const buf = b32decode(id.slice(prefix.length));
  if (!buf || buf.length < 1 + 3 * 2 + 4 || buf[0] !== 1) return null;
  const end = buf.length - 4;
  const digest = crypto.createHash('sha256').update(buf.subarray(0, end)).digest();
  if (!digest.subarray(0, 4).equals(buf.subarray(end))) return null;
  let pos = 1;
  const fields = [];
  for (let i = 0; i < 3; i++) {
    if (end - pos < 2) return null;
    const kind = buf[pos];
    const len = buf[pos + 1];
    pos += 2;
    if (end - pos < len) return null;
    const bytes = buf.subarray(pos, pos + len);
    if (kind === 1) fields.push(bytes.toString('hex'));
    else if (kind === 0) fields.push(bytes.toString('utf8'));
    else return null;
    pos += len;
  }
  if (pos !== end) return null;
  return { backend: fields[0], scope: fields[1], native: fields[2] };
}
