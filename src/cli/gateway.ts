/** `kerf gateway …` is `kerf worker --gateway …`: the device tier with the OIP v2 HTTP front. */
export async function run(argv: string[]): Promise<number | void> {
  const { run: worker } = await import('./worker.js');
  return worker(argv.includes('--help') || argv.includes('-h') ? argv : ['--gateway', ...argv]);
}
