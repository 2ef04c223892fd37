"""The one catalog of user-facing strings, in English and Chinese.

Pages call `translate(key, lang, **params)`; core errors carry a key from here, so the
page shows them in the visitor's language and the command line in English.
"""
from __future__ import annotations

LANGUAGES = {"en": "English", "zh": "中文"}


def translate(key: str, lang: str = "en", **params: object) -> str:
    """The text for `key` in `lang` (English when missing), formatted with `params`."""
    entry = CATALOG.get(key)
    if entry is None:
        return key
    text = entry[1] if lang == "zh" and entry[1] else entry[0]
    return text.format(**params) if params else text


# key: (English, Chinese)
CATALOG: dict[str, tuple[str, str]] = {
    # ---- errors from core
    "err_image_empty": ("The file is empty (0 bytes). Choose a photo file.",
                        "文件是空的（0 字节）。请选择一张照片。"),
    "err_image_too_many_bytes": ("The file is {size_mb:.1f} MB; the limit is {limit_mb:.0f} MB. Use a smaller photo.",
                                 "文件大小为 {size_mb:.1f} MB，上限为 {limit_mb:.0f} MB。请使用更小的照片。"),
    "err_image_too_many_pixels": ("The image is {width}×{height} pixels, over the limit of {limit_mp:.0f} megapixels. Resize it and try again.",
                                  "图像为 {width}×{height} 像素，超过 {limit_mp:.0f} 百万像素的上限。请缩小后重试。"),
    "err_image_too_many_pixels_unknown": ("The image is larger than the limit of {limit_mp:.0f} megapixels. Resize it and try again.",
                                          "图像超过 {limit_mp:.0f} 百万像素的上限。请缩小后重试。"),
    "err_image_not_image": ("This file is not an image we can read. Use JPEG, PNG, WebP, BMP or TIFF.",
                            "无法识别为图像文件。请使用 JPEG、PNG、WebP、BMP 或 TIFF 格式。"),
    "err_image_truncated": ("The image file is damaged or cut short, so it cannot be decoded. Try exporting it again.",
                            "图像文件已损坏或不完整，无法解码。请重新导出后再试。"),
    "err_spec_not_json": ("The pipeline file is not valid JSON.", "流程文件不是有效的 JSON。"),
    "err_spec_not_pipeline": ("The JSON is not an augmentation pipeline: it needs a list \"ops\" of objects with an \"op\" name.",
                              "该 JSON 不是数据增强流程：需要一个名为 \"ops\" 的列表，其中每项含有 \"op\" 名称。"),
    "err_spec_version": ("Pipeline version {version} is not supported; this app reads version 1.",
                         "不支持流程版本 {version}；本应用只读取版本 1。"),
    "err_spec_unknown_op": ("Unknown operator \"{op}\". Known operators: {known}.",
                            "未知的操作 \"{op}\"。可用的操作：{known}。"),
    "err_spec_unknown_param": ("Operator \"{op}\" has no parameter(s) {params}.",
                               "操作 \"{op}\" 没有参数 {params}。"),
    "err_spec_bad_value": ("Operator \"{op}\": parameter \"{param}\" cannot be {value}.",
                           "操作 \"{op}\"：参数 \"{param}\" 不能取值 {value}。"),
    "err_zip_not_zip": ("This file is not a zip archive.", "该文件不是 zip 压缩包。"),
    "err_zip_unsafe_path": ("The archive has an unsafe path \"{name}\" that points outside its folder. It was rejected.",
                            "压缩包中的路径 \"{name}\" 指向文件夹之外，不安全，已拒绝。"),
    "err_zip_too_many_files": ("The archive holds {count} files; the limit is {limit}.",
                               "压缩包包含 {count} 个文件，上限为 {limit}。"),
    "err_zip_too_large": ("The archive would unpack to {size_mb:.0f} MB; the limit is {limit_mb:.0f} MB.",
                          "压缩包解压后为 {size_mb:.0f} MB，上限为 {limit_mb:.0f} MB。"),
    "err_zip_bomb": ("\"{name}\" is compressed {ratio:.0f}:1, which looks like a zip bomb. The archive was rejected.",
                     "\"{name}\" 的压缩比为 {ratio:.0f}:1，疑似压缩炸弹，已拒绝。"),
    "err_zip_no_classes": ("The archive has no class folders. Put each class's images in a folder named after the class.",
                           "压缩包中没有类别文件夹。请把每个类别的图像放进以类别命名的文件夹。"),
    "err_zip_flat_file": ("\"{name}\" is not inside a class folder. Every image must be in a folder named after its class.",
                          "\"{name}\" 不在类别文件夹中。每张图像都必须放在以其类别命名的文件夹里。"),
    "err_zip_empty_class": ("Class folder \"{name}\" has no images.", "类别文件夹 \"{name}\" 中没有图像。"),
    "err_zip_not_image": ("\"{name}\" is not a readable image: {reason}", "\"{name}\" 不是可读取的图像：{reason}"),
    "err_zip_one_class": ("The archive has only one class; a classifier needs at least two.",
                          "压缩包只有一个类别；分类器至少需要两个类别。"),
    # ---- app frame
    "nav_augmentation": ("Augmentation", "数据增强"),
    "nav_attention": ("Attention maps", "注意力图"),
    "nav_finetuning": ("Fine-tuning", "微调训练"),
    "nav_prediction": ("Prediction", "表情预测"),
    "language": ("Language", "语言"),
    "device_cuda": ("Compute: GPU {name} ({memory_gb:.0f} GB)", "计算设备：GPU {name}（{memory_gb:.0f} GB）"),
    "device_mps": ("Compute: Apple GPU (MPS)", "计算设备：Apple GPU（MPS）"),
    "device_cpu": ("Compute: CPU, {threads} threads (no GPU found)", "计算设备：CPU，{threads} 个线程（未检测到 GPU）"),
    "privacy_line": ("Photos stay in memory for this session only; nothing you upload is stored or logged.",
                     "照片只在本次会话的内存中处理，上传的内容不会被保存或记录。"),
    "page_not_built": ("This page is not built yet. It will show {what}.", "此页面尚未完成。完成后将展示{what}。"),
    "issue_attention": ("dlib face landmarks turned into EAC-Net action-unit attention maps",
                        "由 dlib 人脸关键点生成的 EAC-Net 动作单元注意力图"),
    "issue_finetuning": ("training and fine-tuning a CNN with live loss and accuracy curves",
                         "卷积神经网络的训练与微调，以及实时的损失和准确率曲线"),
    "issue_prediction": ("7-class expression scores for every face, in the Emotion API's JSON shape",
                         "每张人脸的 7 类表情得分，格式与 Emotion API 的 JSON 相同"),
    # ---- image input
    "image_source": ("Photo", "照片来源"),
    "source_sample": ("Sample photo", "示例照片"),
    "source_upload": ("Upload", "上传"),
    "source_camera": ("Camera", "摄像头"),
    "sample_credit": ("Sample: astronaut Eileen Collins (NASA, public domain), shipped with scikit-image.",
                      "示例：宇航员 Eileen Collins（NASA，公有领域），来自 scikit-image。"),
    "upload_photo": ("Upload a photo (JPEG, PNG, WebP, BMP or TIFF)", "上传照片（JPEG、PNG、WebP、BMP 或 TIFF）"),
    "take_photo": ("Take a photo", "拍照"),
    "waiting_for_photo": ("Choose a photo to begin.", "请选择一张照片开始。"),
    "original": ("Original", "原图"),
    "filtered": ("Filtered", "滤波后"),
    "adjusted": ("Adjusted", "调整后"),
    "before": ("Before", "处理前"),
    "after": ("After", "处理后"),
    "seed": ("Random seed", "随机种子"),
    "identity": ("identity", "恒等"),
    "flipped": ("flipped", "翻转"),
    # ---- augmentation page
    "aug_title": ("Data augmentation", "数据增强"),
    "aug_intro": ("Try the lecture's augmentation operators on a photo. Every slider changes the result at once; "
                  "the same operators, saved as a pipeline, are what training uses.",
                  "在照片上试用课程中的数据增强操作。拖动滑块即可实时看到结果；同样的操作保存为流程后，训练时也会使用。"),
    "aug_why_title": ("Why does augmentation help?", "为什么数据增强有用？"),
    "aug_why_body": (
        "A CNN learns only from the examples it sees. With few images it memorises them (overfitting) instead of "
        "learning what makes a face look happy or sad. Augmentation makes new, plausible training images from each "
        "one: shifted, rotated, mirrored, cropped, blurred, noisier, brighter or darker. The label stays the same, so "
        "the network learns to ignore those changes (invariance) and generalises better to new photos.\n\n"
        "- **More data for free**: each epoch sees a different version of every image.\n"
        "- **Robustness**: blur, noise and colour changes mimic real cameras and lighting.\n"
        "- **Regularisation**: it lowers overfitting much like weight decay or dropout.\n\n"
        "Choose changes that keep the label true: a mirrored smile is still a smile, but an upside-down face is "
        "rare in real photos.",
        "卷积神经网络只能从见过的样本中学习。图像太少时，它会记住这些图像（过拟合），而不是学到让人脸看起来开心或难过的特征。"
        "数据增强从每张图像生成新的、合理的训练样本：平移、旋转、镜像、裁剪、模糊、加噪、变亮或变暗。标签保持不变，"
        "因此网络学会忽略这些变化（不变性），对新照片的泛化能力更好。\n\n"
        "- **免费获得更多数据**：每个训练周期看到的都是每张图像的不同版本。\n"
        "- **鲁棒性**：模糊、噪声和颜色变化模拟了真实的相机和光照。\n"
        "- **正则化**：它像权重衰减或 dropout 一样减轻过拟合。\n\n"
        "要选择不改变标签的变换：镜像后的笑脸仍是笑脸，但倒置的人脸在真实照片中很少见。"),
    "aug_tab_filters": ("Filters", "滤波器"),
    "aug_tab_affine": ("Affine", "仿射变换"),
    "aug_tab_crops": ("Crops", "裁剪"),
    "aug_tab_noise": ("Noise", "噪声"),
    "aug_tab_color": ("Colour", "颜色"),
    "aug_tab_normalize": ("Normalization", "归一化"),
    "aug_tab_pipeline": ("Pipeline", "增强流程"),
    "aug_tab_dataset": ("Augment a data set", "增强数据集"),
    "filters_intro": ("A filter slides a small kernel over the image; each output pixel is the weighted sum of its "
                      "neighbours (correlation, as MATLAB's `imfilter`). The kernels below are exactly MATLAB's "
                      "`fspecial`, with its defaults.",
                      "滤波器让一个小卷积核在图像上滑动；每个输出像素是其邻域像素的加权和（与 MATLAB 的 `imfilter` 一样为相关运算）。"
                      "下面的卷积核与 MATLAB 的 `fspecial` 完全一致，默认参数也相同。"),
    "filter_kind": ("fspecial kind", "fspecial 类型"),
    "filter_explain_average": ("**average**: every neighbour counts the same (a box blur). Smooths noise, softens edges.",
                               "**average（均值）**：每个邻域像素权重相同（方框模糊）。去除噪声，同时使边缘变软。"),
    "filter_explain_disk": ("**disk**: a circular average with anti-aliased edges, like an out-of-focus lens.",
                            "**disk（圆盘）**：边缘抗锯齿的圆形均值，类似镜头失焦的效果。"),
    "filter_explain_gaussian": ("**gaussian**: weights fall off as a bell curve with standard deviation sigma; a "
                                "smooth blur without the box's artefacts.",
                                "**gaussian（高斯）**：权重按标准差为 sigma 的钟形曲线衰减；比均值模糊更平滑、没有方框伪影。"),
    "filter_explain_unsharp": ("**unsharp**: the image minus its Laplacian, which boosts edges and makes the photo "
                               "look sharper. The kernel sums to 1 with a large positive centre.",
                               "**unsharp（反锐化）**：原图减去其拉普拉斯，增强边缘，使照片看起来更清晰。卷积核之和为 1，中心为较大的正值。"),
    "filter_explain_motion": ("**motion**: an average along a line of `len` pixels at angle `theta` (degrees, "
                              "counter-clockwise), like a camera moving during the exposure.",
                              "**motion（运动）**：沿长度为 `len`、角度为 `theta`（度，逆时针）的直线求平均，类似曝光时相机移动造成的模糊。"),
    "param_hsize": ("Size (hsize)", "尺寸（hsize）"),
    "param_radius": ("Radius", "半径"),
    "param_sigma": ("Sigma", "Sigma（标准差）"),
    "param_alpha": ("Alpha", "Alpha"),
    "param_length": ("Length (pixels)", "长度（像素）"),
    "param_theta_deg": ("Theta (degrees)", "角度 theta（度）"),
    "kernel_of": ("Kernel {shape}", "卷积核 {shape}"),
    "filter_bank_title": ("The lecture's filter bank F1–F10", "课程中的滤波器组 F1–F10"),
    "filter_bank_radians": ("The lecture writes F6 = motion(7, 0.75π), F8 = motion(5, π/2) and F9 = motion(6, π). "
                            "MATLAB reads theta in degrees, so these are 2.36°, 1.57° and 3.14°: all three blur almost "
                            "horizontally. We reproduce MATLAB faithfully; use the motion filter above with 135° or 90° "
                            "to see what was probably meant.",
                            "课程中写的是 F6 = motion(7, 0.75π)、F8 = motion(5, π/2)、F9 = motion(6, π)。MATLAB 的 theta "
                            "单位是度，所以实际角度是 2.36°、1.57° 和 3.14°：三者都几乎是水平模糊。我们忠实复现 MATLAB 的结果；"
                            "如需查看原本可能想要的效果，请在上方的运动滤波器中使用 135° 或 90°。"),
    "affine_intro": ("An affine transform moves every pixel by the same matrix: rotation, scaling, shearing, flipping "
                     "and translation. MATLAB's `maketform('affine', T)` uses row vectors, `[u v 1] = [x y 1]·T`, so the "
                     "translation sits in the bottom row; OpenCV uses column vectors, which is the transpose.",
                     "仿射变换用同一个矩阵移动每个像素：旋转、缩放、剪切、翻转和平移。MATLAB 的 `maketform('affine', T)` 使用行向量，"
                     "`[u v 1] = [x y 1]·T`，因此平移量在最后一行；OpenCV 使用列向量，即其转置。"),
    "affine_preset": ("Preset", "预设"),
    "affine_shift_f": ("f (pixels), used by t1", "f（像素），用于 t1"),
    "affine_t1": ("translation by 2f", "平移 2f"),
    "affine_t2": ("rotation by 10° about the centre", "绕中心旋转 10°"),
    "affine_t3": ("horizontal flip about the width", "沿宽度水平翻转"),
    "affine_t4": ("vertical flip about the height", "沿高度垂直翻转"),
    "affine_t5": ("zoom ×1.2 about the centre", "以中心放大 1.2 倍"),
    "affine_t6": ("horizontal shear 0.2", "水平剪切 0.2"),
    "affine_t7": ("vertical shear 0.2", "垂直剪切 0.2"),
    "affine_t1_note": ("As written in the lecture, t1 is not a valid affine matrix; it clearly means a translation by "
                       "2f in x and y, which is what is shown.",
                       "课程中写出的 t1 并不是合法的仿射矩阵；它显然表示在 x 和 y 方向各平移 2f，这里展示的就是这个变换。"),
    "rotation_title": ("Rotation and translation", "旋转与平移"),
    "rotation_body": ("The lecture's rotation by θ plus a shift (tₓ, t_y), in row-vector form, and its inverse, which "
                      "maps output pixels back to where they came from (this is what resampling uses). The preview "
                      "rotates about the image centre.",
                      "课程中的旋转 θ 加平移 (tₓ, t_y)（行向量形式）及其逆矩阵；逆矩阵把输出像素映射回原来的位置（重采样正是用它）。"
                      "预览图绕图像中心旋转。"),
    "param_angle_deg": ("θ (degrees)", "θ（度）"),
    "param_tx": ("tₓ (pixels)", "tₓ（像素）"),
    "param_ty": ("t_y (pixels)", "t_y（像素）"),
    "rotation_result": ("Rotated about the centre, then shifted", "绕中心旋转后平移"),
    "crops_intro": ("Cropping shows the network different parts and scales of the face. At test time, the 10-crop "
                    "(centre, four corners and their mirrors) averages predictions over ten views.",
                    "裁剪让网络看到人脸的不同部分和尺度。测试时的 10 裁剪（中心、四个角及其镜像）对十个视图的预测取平均。"),
    "crop_size": ("Crop side (pixels)", "裁剪边长（像素）"),
    "crop_center": ("centre", "中心"),
    "crop_top_left": ("top left", "左上"),
    "crop_top_right": ("top right", "右上"),
    "crop_bottom_left": ("bottom left", "左下"),
    "crop_bottom_right": ("bottom right", "右下"),
    "random_crop_title": ("Random resized crops", "随机缩放裁剪"),
    "crop_scale": ("Area fraction", "面积比例"),
    "crop_ratio": ("Aspect ratio (w/h)", "宽高比（宽/高）"),
    "box_caption": ("box x={left}, y={top}, {width}×{height}", "区域 x={left}, y={top}, {width}×{height}"),
    "noise_intro": ("Noise teaches the network to ignore sensor grain and compression. These follow MATLAB's "
                    "`imnoise`, on intensities scaled to [0, 1].",
                    "噪声让网络学会忽略传感器颗粒和压缩失真。以下与 MATLAB 的 `imnoise` 一致，强度缩放到 [0, 1]。"),
    "noise_kind": ("Kind", "类型"),
    "noise_gaussian": ("Gaussian", "高斯噪声"),
    "noise_salt_pepper": ("Salt and pepper", "椒盐噪声"),
    "noise_speckle": ("Speckle", "斑点噪声"),
    "noise_amount_gaussian": ("Variance", "方差"),
    "noise_amount_salt_pepper": ("Density (fraction of pixels)", "密度（像素比例）"),
    "noise_amount_speckle": ("Variance", "方差"),
    "noise_explain_gaussian": ("Adds n ~ N(0, variance) to every pixel.", "给每个像素加上 n ~ N(0, 方差)。"),
    "noise_explain_salt_pepper": ("Sets that fraction of pixels to black or white at random.",
                                  "随机把该比例的像素设为黑色或白色。"),
    "noise_explain_speckle": ("Multiplicative: J = I + n·I, with n uniform, mean 0 and that variance.",
                              "乘性噪声：J = I + n·I，其中 n 服从均值为 0、方差为该值的均匀分布。"),
    "color_intro": ("Colour changes mimic lighting and cameras: brightness scales the pixels, contrast stretches "
                    "them about the mean grey, saturation moves towards or away from grey, hue rotates the colours "
                    "around the grey axis (in turns), and gamma bends the tone curve (out = in^γ).",
                    "颜色变化模拟不同的光照和相机：亮度缩放像素值，对比度围绕平均灰度拉伸，饱和度向灰色靠近或远离，"
                    "色调围绕灰度轴旋转颜色（单位为圈），伽马改变色调曲线（输出 = 输入^γ）。"),
    "color_brightness": ("Brightness", "亮度"),
    "color_contrast": ("Contrast", "对比度"),
    "color_saturation": ("Saturation", "饱和度"),
    "color_hue": ("Hue (turns)", "色调（圈）"),
    "color_gamma": ("Gamma", "伽马"),
    "normalize_intro": ("Before training, inputs are normalised so that every feature has a similar range: subtract "
                        "the mean (per channel, or a whole mean image over the data set), scale by 1/256, and resize "
                        "to the network's input size (224 for VGG).",
                        "训练前要对输入做归一化，使各特征的取值范围相近：减去均值（按通道，或减去整个数据集的平均图像），"
                        "乘以 1/256，并缩放到网络的输入尺寸（VGG 为 224）。"),
    "normalize_mode": ("Subtract", "减去"),
    "normalize_channel_mean": ("per-channel mean", "各通道均值"),
    "normalize_mean_image": ("mean image (over the ten crops)", "平均图像（十个裁剪的平均）"),
    "normalize_none": ("nothing", "不减"),
    "normalize_size": ("Resize to (pixels)", "缩放到（像素）"),
    "normalize_scale": ("Scale by 1/256", "乘以 1/256"),
    "normalize_channel_mean_value": ("Channel means: R {r:.1f}, G {g:.1f}, B {b:.1f}", "通道均值：R {r:.1f}，G {g:.1f}，B {b:.1f}"),
    "normalize_mean_image_caption": ("Mean image", "平均图像"),
    "normalize_histogram": ("Pixel values before and after", "处理前后的像素值分布"),
    "normalize_range": ("After: min {low:.3f}, max {high:.3f}, mean {mean:.3f}", "处理后：最小 {low:.3f}，最大 {high:.3f}，均值 {mean:.3f}"),
    "pipeline_intro": ("A pipeline is a list of operators, each run with probability p and with parameters drawn at "
                       "random from the ranges you set. It is plain JSON: download it, upload it again later, and the "
                       "fine-tuning page trains with the same file.",
                       "增强流程是一组操作，每个操作以概率 p 执行，参数从你设定的范围内随机抽取。它就是普通的 JSON："
                       "可以下载、稍后再上传，微调页面训练时使用的也是同一个文件。"),
    "pipeline_ops": ("Operators, in order", "操作（按顺序）"),
    "pipeline_upload": ("Load a pipeline (JSON)", "载入流程（JSON）"),
    "pipeline_download": ("Download pipeline JSON", "下载流程 JSON"),
    "pipeline_draws": ("Number of draws", "抽样次数"),
    "draw_n": ("Draw {n}", "第 {n} 次抽样"),
    "draw_params": ("Parameters", "参数"),
    "op_filter_preset": ("Filter bank F1–F10", "滤波器组 F1–F10"),
    "op_motion_blur": ("Motion blur", "运动模糊"),
    "op_gaussian_blur": ("Gaussian blur", "高斯模糊"),
    "op_affine": ("Affine (rotate, shift, scale, shear)", "仿射（旋转、平移、缩放、剪切）"),
    "op_affine_preset": ("Lecture affine presets t1–t7", "课程仿射预设 t1–t7"),
    "op_hflip": ("Horizontal flip", "水平翻转"),
    "op_crop": ("Crop and resize", "裁剪并缩放"),
    "op_noise": ("Noise", "噪声"),
    "op_color": ("Colour jitter", "颜色抖动"),
    "op_resize": ("Resize", "缩放"),
    "param_p": ("Probability p", "概率 p"),
    "param_name": ("Presets to choose from", "可选预设"),
    "param_angle": ("Angle (degrees)", "角度（度）"),
    "param_rotation": ("Rotation (degrees)", "旋转（度）"),
    "param_translate": ("Shift (fraction of size)", "平移（尺寸的比例）"),
    "param_scale": ("Scale", "缩放"),
    "param_shear": ("Shear (degrees)", "剪切（度）"),
    "param_shift": ("f (pixels)", "f（像素）"),
    "param_mode": ("Crop kinds", "裁剪方式"),
    "param_ratio": ("Aspect ratio (w/h)", "宽高比（宽/高）"),
    "param_size": ("Output size (pixels)", "输出尺寸（像素）"),
    "param_kind": ("Kinds", "类型"),
    "param_amount": ("Amount (variance or density)", "强度（方差或密度）"),
    "param_brightness": ("Brightness", "亮度"),
    "param_contrast": ("Contrast", "对比度"),
    "param_saturation": ("Saturation", "饱和度"),
    "param_hue": ("Hue (turns)", "色调（圈）"),
    "param_gamma": ("Gamma", "伽马"),
    "dataset_intro": ("Upload a zip with one folder per class (for example `happy/001.jpg`, `sad/002.png`). Each "
                      "image is kept and joined by augmented copies drawn from the pipeline on the Pipeline tab.",
                      "上传一个 zip，每个类别一个文件夹（例如 `happy/001.jpg`、`sad/002.png`）。每张图像都会保留，"
                      "并加上按“增强流程”标签页中的流程生成的增强副本。"),
    "dataset_upload": ("Zip of class folders", "类别文件夹的 zip"),
    "dataset_copies": ("Augmented copies per image", "每张图像的增强副本数"),
    "dataset_run": ("Augment", "开始增强"),
    "dataset_reading": ("Checking the archive…", "正在检查压缩包…"),
    "dataset_reading_n": ("Reading image {done} of {total}", "正在读取第 {done}/{total} 张图像"),
    "dataset_augmenting_n": ("Augmenting image {done} of {total}", "正在增强第 {done}/{total} 张图像"),
    "dataset_counts": ("Images per class:", "各类别图像数："),
    "dataset_done": ("Done: {count} images in the new archive.", "完成：新压缩包中共有 {count} 张图像。"),
    "dataset_download": ("Download augmented zip", "下载增强后的 zip"),
    "dataset_hint": ("Limits: at most 5,000 files and 512 MB unpacked; paths must stay inside the archive.",
                     "限制：最多 5000 个文件，解压后不超过 512 MB；路径必须位于压缩包内部。"),
}
