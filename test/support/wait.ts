/**
 * Waits until `condition` holds or `timeoutMs` has passed, checking every `stepMs`. It does not
 * fail by itself: the test asserts what it waited for afterwards, so a timeout fails there, naming
 * the value it expected.
 */
export async function waitUntil(condition: () => boolean, timeoutMs = 10_000, stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, stepMs));
}
