import { Injectable } from '@nestjs/common';
import Busboy from 'busboy';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { BadInputError } from '../common/errors';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { InspectedArchive, inspectUpload, PackageTooLargeError } from './archive-inspector';
import { PackageStore } from './package-store';

export interface ReceivedUpload {
  fields: Record<string, string>;
  archive: InspectedArchive;
  tempPath: string;
}

/** Room for the multipart framing and form fields around the file. */
const MULTIPART_OVERHEAD = 1024 * 1024;

const cutOff = () =>
  new BadInputError(
    'The upload was cut off before its end (the connection closed); nothing was kept. Send it again.',
    undefined,
    'UPLOAD_INCOMPLETE',
  );

/**
 * Takes a multipart upload apart with busboy, streaming the `file` part straight through the
 * archive inspector into a temporary file (never into memory). A refused upload stops reading at
 * once; its connection is closed after the answer. Whatever ends an upload early (a refusal, the
 * client going away) closes the temporary file and removes it before the request is done with.
 */
@Injectable()
export class UploadReceiver {
  constructor(
    private readonly store: PackageStore,
    @InjectAppConfig() private readonly config: AppConfig,
  ) {}

  async receive(req: IncomingMessage, res: ServerResponse): Promise<ReceivedUpload> {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.config.maxPackageBytes + MULTIPART_OVERHEAD) {
      this.closeAfterAnswer(req, res);
      throw new PackageTooLargeError(this.config.maxPackageBytes);
    }
    // The client may have gone while the cluster was looked up: its 'close' has been and gone.
    if (req.destroyed && !req.readableEnded) throw cutOff();
    let busboy: Busboy.Busboy;
    try {
      busboy = Busboy({ headers: req.headers, limits: { files: 1, fields: 30, fieldSize: 64 * 1024, parts: 32 } });
    } catch {
      throw new BadInputError('Send the package as multipart/form-data with the archive in a field named "file".', [
        { field: 'file', problems: ['file is required (multipart/form-data)'] },
      ]);
    }
    const tempPath = await this.store.newTempPath();
    const fields: Record<string, string> = {};
    let file: Readable | null = null;
    let inspection: Promise<InspectedArchive> | null = null;
    let onClose: (() => void) | undefined;

    try {
      const archive = await new Promise<InspectedArchive>((resolve, reject) => {
        // A client that goes away mid-body never ends the request: busboy would wait for the rest,
        // the inspection with it, and the temporary file would stay open until the process ends.
        // (Not req.complete: a body received whole but not yet read is lost with the request too.)
        onClose = () => {
          if (req.readableEnded) return;
          const error = cutOff();
          req.unpipe(busboy);
          file?.destroy(error); // ends the inspection, which closes the temporary file
          busboy.destroy();
          reject(error);
        };
        req.once('close', onClose);
        busboy.on('field', (name, value) => (fields[name] = value));
        busboy.on('file', (name, stream) => {
          if (name !== 'file') {
            stream.resume();
            return;
          }
          file = stream;
          inspection = inspectUpload(stream, tempPath, {
            maxBytes: this.config.maxPackageBytes,
            maxEntries: this.config.packageMaxEntries,
            maxUnpackedBytes: this.config.packageMaxUnpackedBytes,
          });
          inspection.catch((error: Error) => {
            req.unpipe(busboy);
            reject(error);
          });
        });
        busboy.on('error', (error: Error) =>
          reject(
            new BadInputError(`The multipart body could not be read: ${error.message}.`, undefined, 'BAD_MULTIPART'),
          ),
        );
        busboy.on('close', () => {
          if (!inspection)
            return reject(
              new BadInputError('The upload has no file: put the archive in a field named "file".', [
                { field: 'file', problems: ['file is required'] },
              ]),
            );
          inspection.then(resolve, reject);
        });
        req.pipe(busboy);
      });
      return { fields, archive, tempPath };
    } catch (error) {
      this.closeAfterAnswer(req, res);
      const pending = inspection as Promise<InspectedArchive> | null;
      if (pending) {
        // Refused before the file part ended (a bad form field, the client gone): stop reading it,
        // and let the inspection close the temporary file before it is removed.
        (file as Readable | null)?.destroy(error as Error);
        await pending.catch(() => undefined);
      }
      await this.store.removeTemp(tempPath);
      throw this.store.refusalFor(error);
    } finally {
      if (onClose) req.removeListener('close', onClose);
    }
  }

  /** A refused upload is not read to its end: answer, then close the connection. */
  private closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('Connection', 'close');
    res.once('finish', () => {
      if (!req.complete) req.socket.destroySoon();
    });
  }
}
