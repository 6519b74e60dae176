/** The oracle's verdict on a set of judged videos: motion-good and prompt-adherence rates, 95% Wilson intervals. */
import { type JudgedVideo, type Rate, wilson } from '@prfl/pretrained';

export interface OracleRates {
  motionGood: Rate;
  adherence: Rate;
}

export function oracleRates(videos: readonly JudgedVideo[]): OracleRates {
  return {
    motionGood: wilson(videos.filter((v) => v.motionGood).length, videos.length),
    adherence: wilson(videos.filter((v) => v.adherent).length, videos.length),
  };
}
