import { defineComponent, h, onBeforeUnmount, onMounted, ref, type PropType } from 'vue'
import type { Feed } from '@changecast/core'
import { useFeed } from '@changecast/vue'
import { mountDevtools, type DevtoolsHandle, type DevtoolsPosition } from './index.js'

/**
 * The Changecast devtools as a Vue component: mounts the panel (loaded on demand) for the
 * feed installed with `changecastPlugin` (or the `feed` prop), and removes it on unmount.
 *
 * @example
 * <ChangecastDevtools v-if="import.meta.env.DEV" position="bottom-left" />
 */
export const ChangecastDevtools = defineComponent({
  name: 'ChangecastDevtools',
  props: {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a feed of any database type
    feed: { type: Object as PropType<Feed<any>>, default: undefined },
    position: { type: String as PropType<DevtoolsPosition>, default: undefined },
    inline: { type: Boolean, default: false },
  },
  setup(props) {
    const feed = useFeed(props.feed, 'ChangecastDevtools')
    const anchor = ref<HTMLDivElement>()
    let handle: DevtoolsHandle | undefined
    onMounted(() => {
      handle = mountDevtools(feed, { position: props.position, target: props.inline ? anchor.value : undefined })
    })
    onBeforeUnmount(() => handle?.unmount())
    return () => h('div', { ref: anchor, 'data-changecast-devtools-anchor': '' })
  },
})
