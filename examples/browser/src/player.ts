/**
 * A decoded video as an animated canvas: the canvas holds the video's own pixels (64 x 64) and CSS scales
 * it up without smoothing, so what a test reads back with getImageData is exactly what was decoded.
 */
import type { DecodedVideo } from './frames.js';

const FPS = 8;

export interface Player {
  canvas: HTMLCanvasElement;
  stop(): void;
}

export function playVideo(video: DecodedVideo, label: string, scale = 3): Player {
  const canvas = document.createElement('canvas');
  canvas.width = video.width;
  canvas.height = video.height;
  canvas.className = 'video';
  canvas.dataset.video = label;
  canvas.style.width = `${video.width * scale}px`;
  canvas.style.height = `${video.height * scale}px`;
  canvas.title = label;
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (context === null) throw new Error('this browser gives no 2D canvas context');
  const size = video.width * video.height * 4;
  const frames = Array.from(
    { length: video.frames },
    (_, f) => new ImageData(video.rgba.slice(f * size, (f + 1) * size), video.width, video.height),
  );
  let frame = 0;
  const draw = () => {
    context.putImageData(frames[frame] as ImageData, 0, 0);
    frame = (frame + 1) % frames.length;
  };
  draw();
  const timer = setInterval(draw, 1000 / FPS);
  return { canvas, stop: () => clearInterval(timer) };
}
