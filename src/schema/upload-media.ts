import { encodeGlobalID } from '@pothos/plugin-relay';
import { findUpload, type UploadRow } from '../db/uploads.ts';
import { signFileUrl } from '../services/auth.ts';
import { builder } from './builder.ts';
import { UploadRef } from './upload.ts';

const MediaKind = builder.enumType('MediaKind', { values: ['IMAGE', 'VIDEO'] as const });

const Camera = builder.objectRef<UploadRow>('Camera').implement({
  description: 'How the picture was taken, from its EXIF (or a video container’s tags).',
  fields: (t) => ({
    make: t.exposeString('cameraMake', { nullable: true }),
    model: t.exposeString('cameraModel', { nullable: true }),
    lens: t.exposeString('lensModel', { nullable: true }),
    exposureTime: t.exposeFloat('exposureTime', { nullable: true, description: 'Seconds, e.g. 0.004 for 1/250.' }),
    fNumber: t.exposeFloat('fNumber', { nullable: true }),
    iso: t.exposeInt('iso', { nullable: true }),
    focalLength: t.exposeFloat('focalLength', { nullable: true, description: 'Millimetres.' }),
  }),
});

type Point = { latitude: number; longitude: number };
const GeoLocation = builder.objectRef<Point>('GeoLocation').implement({
  description: 'WGS 84 degrees.',
  fields: (t) => ({ latitude: t.exposeFloat('latitude'), longitude: t.exposeFloat('longitude') }),
});

const VideoInfo = builder.objectRef<UploadRow>('VideoInfo').implement({
  fields: (t) => ({
    durationSeconds: t.exposeFloat('durationSeconds', { nullable: true }),
    codec: t.exposeString('videoCodec', { nullable: true, description: "ffprobe's codec name, e.g. h264, hevc, vp9." }),
    frameRate: t.exposeFloat('frameRate', { nullable: true, description: 'Frames per second (average).' }),
  }),
});

const isVideo = (u: UploadRow) => u.mimeType.startsWith('video/');
const hasCamera = (u: UploadRow) =>
  [u.cameraMake, u.cameraModel, u.lensModel, u.exposureTime, u.fNumber, u.iso, u.focalLength].some((v) => v !== null);

builder.objectFields(UploadRef, (t) => ({
  kind: t.field({ type: MediaKind, resolve: (u) => (isVideo(u) ? 'VIDEO' : 'IMAGE') }),
  sha256: t.string({
    nullable: true,
    description: 'Hex SHA-256 of the original, computed while it streamed in; the key for duplicate detection.',
    resolve: (u) => u.sha256?.toString('hex') ?? null,
  }),
  previewUrl: t.string({
    nullable: true,
    description:
      'Fits in 1440 px, sRGB, no metadata: JPEG, or WebP when the picture has transparency. Signed and expiring ' +
      'like thumbnailUrl; only the owner receives it.',
    resolve: (u, _args, ctx) =>
      u.previewKey ? ctx.baseUrl + signFileUrl(ctx.config.tokenSecret, 'preview', u.id, ctx.config.fileUrlTtlSeconds) : null,
  }),
  placeholderHash: t.exposeString('placeholderHash', {
    nullable: true,
    description:
      'ThumbHash (https://evanw.github.io/thumbhash/), base64: decode it (e.g. thumbHashToDataURL from the ' +
      '"thumbhash" package) to paint a blurred preview, with the right aspect ratio, before the thumbnail loads.',
  }),
  takenAt: t.expose('takenAt', {
    type: 'DateTime',
    nullable: true,
    description: 'When it was captured (EXIF DateTimeOriginal; a video’s creation time). Without a zone in the file, the wall-clock time as UTC.',
  }),
  camera: t.field({ type: Camera, nullable: true, resolve: (u) => (hasCamera(u) ? u : null) }),
  location: t.field({
    type: GeoLocation,
    nullable: true,
    description: 'Where it was taken (EXIF GPS or video ISO 6709 tag). Only ever shown to the owner, and never written into a rendition.',
    resolve: (u, _args, ctx) =>
      ctx.viewer?.id === u.userId && u.latitude !== null && u.longitude !== null
        ? { latitude: u.latitude, longitude: u.longitude }
        : null,
  }),
  video: t.field({ type: VideoInfo, nullable: true, resolve: (u) => (isVideo(u) ? u : null) }),
}));

export type DuplicateFileShape = { filename: string; existingUploadId: string; userId: string };
export const DuplicateFileRef = builder.objectRef<DuplicateFileShape>('DuplicateFile').implement({
  description: 'A file whose content the viewer already has (earlier, or earlier in the same request): not stored or processed again.',
  fields: (t) => ({
    filename: t.exposeString('filename'),
    existingUploadId: t.id({ resolve: (d) => encodeGlobalID('Upload', d.existingUploadId) }),
    existingUpload: t.field({
      type: UploadRef,
      nullable: true,
      description: 'Null if it was deleted since.',
      resolve: async (d, _args, ctx) => (await findUpload(ctx.db, d.existingUploadId, d.userId)) ?? null,
    }),
  }),
});
