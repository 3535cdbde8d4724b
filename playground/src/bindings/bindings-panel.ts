import type { Feed, TableMap } from '@changecast/core'
import type { BoardDb } from '../db'
import { h } from '../dom'
import { mountReactPanel } from './react-panel'
import { mountSolidPanel } from './solid-panel'
import { mountSveltePanel } from './svelte-panel'
import { mountVuePanel } from './vue-panel'

/** The same live view four times: with the React hooks, the Vue composables, the Solid primitives and the Svelte bindings. */
export function createBindingsPanel(feed: Feed<TableMap<BoardDb>>) {
  const react = h('div', { class: 'binding' })
  const vue = h('div', { class: 'binding' })
  const solid = h('div', { class: 'binding' })
  const svelte = h('div', { class: 'binding' })
  const element = h(
    'section',
    { class: 'panel bindings', 'aria-labelledby': 'bindings-title' },
    h('h2', { id: 'bindings-title' }, 'Framework bindings'),
    h(
      'div',
      { class: 'binding-grid' },
      h('article', { 'aria-label': 'React panel' }, h('h3', {}, 'React · @changecast/react'), react),
      h('article', { 'aria-label': 'Vue panel' }, h('h3', {}, 'Vue · @changecast/vue'), vue),
      h('article', { 'aria-label': 'Solid panel' }, h('h3', {}, 'Solid · @changecast/solid'), solid),
      h('article', { 'aria-label': 'Svelte panel' }, h('h3', {}, 'Svelte · @changecast/svelte'), svelte),
    ),
  )
  mountReactPanel(react, feed)
  mountVuePanel(vue, feed)
  mountSolidPanel(solid, feed)
  mountSveltePanel(svelte, feed)
  return element
}
