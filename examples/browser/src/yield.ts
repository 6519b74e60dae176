/**
 * Gives the browser a turn between two pieces of work (a denoising step, a trainer step), so it can
 * paint the progress and answer clicks. A message-channel task, not `requestAnimationFrame`: rAF stops
 * in a background tab, and the work should go on there.
 */
export function yieldToBrowser(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
