// One retention export file: gzip NDJSON (one JSON object per line, lowercase keys matching the
// email_events_op columns), which Redshift loads with
//   COPY email_events FROM 's3://bucket/prefix/' IAM_ROLE '...' FORMAT JSON 'auto' GZIP TIMEFORMAT 'auto';
// Written to NAME.partial, flushed to disk (fsync) and renamed, then read back and checked line by
// line against the exported ids before anything may be deleted.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';

export interface WrittenFile {
  path: string;
  bytes: number;
  sha256: string;
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// lines: an async source of NDJSON lines (without the newline).
export async function writeGzipLines(path: string, lines: AsyncIterable<string>): Promise<void> {
  const partial = `${path}.partial`;
  async function* withNewlines() {
    for await (const line of lines) yield `${line}\n`;
  }
  await pipeline(Readable.from(withNewlines()), createGzip(), createWriteStream(partial));
  await fsyncPath(partial);
  await rename(partial, path);
  // The rename itself is durable only once the directory is flushed.
  await fsyncPath(dirname(path));
}

// Reads the file back: every line must parse and carry the expected event_id, in order.
export async function verifyGzipLines(path: string, expectedIds: string[]): Promise<WrittenFile> {
  const hash = createHash('sha256');
  const raw = createReadStream(path);
  raw.on('data', (chunk) => hash.update(chunk));
  const gunzip = raw.pipe(createGunzip());
  raw.on('error', (error) => gunzip.destroy(error));
  let index = 0;
  for await (const line of createInterface({
    input: gunzip,
    crlfDelay: Number.POSITIVE_INFINITY,
  })) {
    const id = (JSON.parse(line) as { event_id?: unknown }).event_id;
    if (id !== expectedIds[index]) {
      throw new Error(
        `${path}: line ${index + 1} holds event ${String(id)}, expected ${expectedIds[index]}`,
      );
    }
    index++;
  }
  if (index !== expectedIds.length) {
    throw new Error(`${path}: ${index} lines, expected ${expectedIds.length}`);
  }
  return { path, bytes: (await stat(path)).size, sha256: hash.digest('hex') };
}
