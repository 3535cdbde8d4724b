import { h } from './dom'

/** Starts and stops a Web Worker that writes to the board on a timer. */
export function createWorkerPanel(onStart: (origin: string) => void, onStop: (origin: string) => void) {
  let worker: Worker | undefined
  let origin = ''
  const state = h('span', { 'data-testid': 'worker-state' }, 'stopped')
  const toggle = h(
    'button',
    {
      type: 'button',
      'aria-pressed': 'false',
      'data-testid': 'worker-toggle',
      onclick: () => (worker ? stop() : start()),
    },
    'Start worker',
  )

  function start() {
    worker = new Worker(new URL('./writer.worker.ts', import.meta.url), { type: 'module' })
    worker.onmessage = (event: MessageEvent<{ origin: string }>) => {
      origin = event.data.origin
      state.textContent = `writing every 400 ms as ${origin.slice(0, 8)}`
      onStart(origin)
    }
    state.textContent = 'starting…'
    toggle.textContent = 'Stop worker'
    toggle.setAttribute('aria-pressed', 'true')
  }

  function stop() {
    worker?.terminate()
    worker = undefined
    if (origin) onStop(origin)
    origin = ''
    state.textContent = 'stopped'
    toggle.textContent = 'Start worker'
    toggle.setAttribute('aria-pressed', 'false')
  }

  const element = h(
    'section',
    { class: 'panel worker', 'aria-labelledby': 'worker-title' },
    h('h2', { id: 'worker-title' }, 'Worker'),
    h(
      'p',
      {},
      'A dedicated Web Worker with its own feed. Its writes arrive here with source ',
      h('span', { class: 'chip tab' }, 'tab'),
      '.',
    ),
    toggle,
    ' ',
    state,
  )
  return { element }
}
