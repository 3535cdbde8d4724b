import { createElement as h } from 'react'
import { createRoot } from 'react-dom/client'
import { ChangecastProvider } from '@changecast/react'
import { ChangecastDevtools } from '@changecast/devtools/react'
import { feed, opened } from './shared'

createRoot(document.getElementById('root')!).render(
  h(
    ChangecastProvider,
    { feed },
    h('p', { className: 'chip' }, 'A React app'),
    h(ChangecastDevtools, { position: 'top-right' }),
  ),
)
void opened.then(() => document.body.setAttribute('data-ready', ''))
