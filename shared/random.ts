import { randomFillSync } from 'node:crypto';

/**
 * Random bytes for the hot paths' secrets and ids (secrets.ts, the realm's JWT ids), taken from a
 * pool filled 4 KiB at a time: a `randomBytes` call costs about 2.6 us on this kind of machine
 * whatever its size, a slice of the pool about 0.1 us, and every mint and every realm token takes
 * two or three (bench/, gateway keep-alive and realm).
 * The bytes are the same CSPRNG's (OpenSSL's, through `randomFillSync`); each is handed out once.
 */
const RANDOM_POOL = Buffer.alloc(4096);
let randomPoolOffset = RANDOM_POOL.length;

/** `size` (at most 4096) fresh random bytes, as a copy the caller owns. */
export function randomBytesFromPool(size: number): Buffer {
  if (size > RANDOM_POOL.length) throw new RangeError(`at most ${RANDOM_POOL.length} random bytes at a time`);
  if (randomPoolOffset + size > RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomPoolOffset = 0;
  }
  const out = Buffer.from(RANDOM_POOL.subarray(randomPoolOffset, randomPoolOffset + size));
  // Handed out once: the copy is the caller's, the pool's bytes are zeroed.
  RANDOM_POOL.fill(0, randomPoolOffset, randomPoolOffset + size);
  randomPoolOffset += size;
  return out;
}

