"""The file names the pipeline takes, by extension: one list for the site's upload checks (detection.forms,
detection.staging) and the labelled-folder readers (ml.dataset, ml.evaluate, the benchmarks).

The name only has to agree with the content, which ml.media checks by magic bytes and by decoding. No
imports: the web process reads these without loading the pipeline's libraries.
"""

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".avi", ".mkv")
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
