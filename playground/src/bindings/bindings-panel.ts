import type { Feed, TableMap } from '@changecast/core'
import type { BoardDb } from '../db'
import { h } from '../dom'
import { mountReactPanel } from './react-panel'
import { mountVuePanel } from './vue-panel'

/** The same live view twice: once with the React hooks, once with the Vue composables. */
export function createBindingsPanel(feed: Feed<TableMap<BoardDb>>) {
  const react = h('div', { class: 'binding' })
  const vue = h('div', { class: 'binding' })
  const element = h(
    'section',
    { class: 'panel bindings', 'aria-labelledby': 'bindings-title' },
    h('h2', { id: 'bindings-title' }, 'Framework bindings'),
    h(
      'div',
      { class: 'binding-grid' },
      h('article', { 'aria-label': 'React panel' }, h('h3', {}, 'React · @changecast/react'), react),
      h('article', { 'aria-label': 'Vue panel' }, h('h3', {}, 'Vue · @changecast/vue'), vue),
    ),
  )
  mountReactPanel(react, feed)
  mountVuePanel(vue, feed)
  return element
}
