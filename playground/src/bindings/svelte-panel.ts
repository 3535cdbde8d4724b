import { mount } from 'svelte'
import type { Feed, TableMap } from '@changecast/core'
import type { BoardDb } from '../db'
import SveltePanel from './SveltePanel.svelte'

/** Mounts the Svelte panel: a Svelte 5 component built only with @changecast/svelte. */
export function mountSveltePanel(element: HTMLElement, feed: Feed<TableMap<BoardDb>>): void {
  mount(SveltePanel, { target: element, props: { feed } })
}
