import { Injectable } from '@nestjs/common';
import Busboy from 'busboy';
import type { Request, Response } from 'express';
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

/**
 * Takes a multipart upload apart with busboy, streaming the `file` part straight through the
 * archive inspector into a temporary file (never into memory). A refused upload stops reading at
 * once; its connection is closed after the answer, and its temporary file is removed.
 */
@Injectable()
export class UploadReceiver {
  constructor(
    private readonly store: PackageStore,
    @InjectAppConfig() private readonly config: AppConfig,
  ) {}

  async receive(req: Request, res: Response): Promise<ReceivedUpload> {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.config.maxPackageBytes + MULTIPART_OVERHEAD) {
      this.closeAfterAnswer(req, res);
      throw new PackageTooLargeError(this.config.maxPackageBytes);
    }
    let busboy: Busboy.Busboy;
    try {
      busboy = Busboy({ headers: req.headers, limits: { files: 1, fields: 30, fieldSize: 64 * 1024, parts: 32 } });
    } catch {
      throw new BadInputError('Send the package as multipart/form-data with the archive in a field named "file".', [{ field: 'file', problems: ['file is required (multipart/form-data)'] }]);
    }
    const tempPath = await this.store.newTempPath();
    const fields: Record<string, string> = {};
    let inspection: Promise<InspectedArchive> | null = null;

    try {
      const archive = await new Promise<InspectedArchive>((resolve, reject) => {
        busboy.on('field', (name, value) => (fields[name] = value));
        busboy.on('file', (name, stream) => {
          if (name !== 'file') {
            stream.resume();
            return;
          }
          inspection = inspectUpload(stream, tempPath, {
            maxBytes: this.config.maxPackageBytes,
            maxEntries: this.config.packageMaxEntries,
            maxUnpackedBytes: this.config.packageMaxUnpackedBytes,
          });
          inspection.catch((error: unknown) => {
            req.unpipe(busboy);
            reject(error);
          });
        });
        busboy.on('error', (error: Error) => reject(new BadInputError(`The multipart body could not be read: ${error.message}.`, undefined, 'BAD_MULTIPART')));
        busboy.on('close', () => {
          if (!inspection) return reject(new BadInputError('The upload has no file: put the archive in a field named "file".', [{ field: 'file', problems: ['file is required'] }]));
          inspection.then(resolve, reject);
        });
        req.pipe(busboy);
      });
      return { fields, archive, tempPath };
    } catch (error) {
      this.closeAfterAnswer(req, res);
      await this.store.removeTemp(tempPath);
      throw error;
    }
  }

  /** A refused upload is not read to its end: answer, then close the connection. */
  private closeAfterAnswer(req: Request, res: Response): void {
    res.setHeader('Connection', 'close');
    res.once('finish', () => {
      if (!req.complete) req.socket.destroySoon();
    });
  }
}
