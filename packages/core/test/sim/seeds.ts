/** Seeds from text: "500" (1…500), "20-80", or a list "3,17,42". */
export function simSeeds(given: string): number[] {
  if (given.includes(',')) return given.split(',').map(Number)
  const range = /^(\d+)-(\d+)$/.exec(given)
  const [from, to] = range ? [Number(range[1]), Number(range[2])] : [1, Number(given)]
  if (!Number.isInteger(from) || !Number.isInteger(to) || to < from)
    throw new Error(`SIM_SEEDS: a count ("500"), a range ("20-80") or a list ("3,17"), got "${given}"`)
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}
