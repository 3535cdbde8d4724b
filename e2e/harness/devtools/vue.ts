import { createApp, h } from 'vue'
import { changecastPlugin } from '@changecast/vue'
import { ChangecastDevtools } from '@changecast/devtools/vue'
import { feed, opened } from './shared'

createApp({ render: () => [h('p', { class: 'chip' }, 'A Vue app'), h(ChangecastDevtools, { inline: true })] })
  .use(changecastPlugin, feed)
  .mount('#root')
void opened.then(() => document.body.setAttribute('data-ready', ''))
