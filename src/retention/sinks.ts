// Where verified export files end up. Local: they stay in the export folder. S3: uploaded with a
// SHA-256 checksum S3 verifies on receipt, the object's size checked with HeadObject, and only then
// the local copy removed. store() returns the location recorded in email_event_exports; if it
// throws, nothing is deleted from the database.
import { readFile, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Config } from '../config.ts';
import type { WrittenFile } from './export-file.ts';

export interface ExportSink {
  describe(): string;
  store(file: WrittenFile): Promise<string>;
  close(): Promise<void>;
}

export function localSink(dir: string): ExportSink {
  return {
    describe: () => dir,
    store: async (file) => file.path,
    close: async () => undefined,
  };
}

// Region and credentials come from the AWS SDK's chains; EVENTS_EXPORT_S3_ENDPOINT (path-style,
// for MinIO and the like) wins over the SDK's own AWS_ENDPOINT_URL_S3, which it reads itself.
export async function s3Sink(
  retention: Config['retention'],
  region: string | undefined,
): Promise<ExportSink> {
  const { HeadObjectCommand, PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
  const bucket = retention.s3Bucket;
  if (!bucket) throw new Error('s3Sink: EVENTS_EXPORT_S3_BUCKET is not set');
  const client = new S3Client({
    ...(region ? { region } : {}),
    ...(retention.s3Endpoint ? { endpoint: retention.s3Endpoint, forcePathStyle: true } : {}),
  });
  return {
    describe: () => `s3://${bucket}/${retention.s3Prefix}`,
    async store(file) {
      const key = `${retention.s3Prefix}${basename(file.path)}`;
      // Files are one batch each (tens of MB at most): a single PUT with a checksum header.
      const body = await readFile(file.path);
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          // Not Content-Encoding: gzip, or HTTP clients would unpack what Redshift COPY GZIP expects packed.
          ContentType: 'application/gzip',
          ChecksumSHA256: Buffer.from(file.sha256, 'hex').toString('base64'),
        }),
      );
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      if (head.ContentLength !== file.bytes) {
        throw new Error(
          `s3://${bucket}/${key}: ${head.ContentLength} bytes stored, ${file.bytes} uploaded`,
        );
      }
      await rm(file.path);
      return `s3://${bucket}/${key}`;
    },
    close: async () => client.destroy(),
  };
}
