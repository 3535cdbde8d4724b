import type { Feed, TableMap } from '@changecast/core'
import type { BoardDb } from '../db'
import { h } from '../dom'
import { mountReactPanel } from './react-panel'
import { mountSolidPanel } from './solid-panel'
import { mountVuePanel } from './vue-panel'

/** The same live view three times: with the React hooks, the Vue composables and the Solid primitives. */
export function createBindingsPanel(feed: Feed<TableMap<BoardDb>>) {
  const react = h('div', { class: 'binding' })
  const vue = h('div', { class: 'binding' })
  const solid = h('div', { class: 'binding' })
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
    ),
  )
  mountReactPanel(react, feed)
  mountVuePanel(vue, feed)
  mountSolidPanel(solid, feed)
  return element
}
