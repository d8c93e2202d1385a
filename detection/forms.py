"""Forms: upload validation (before anything is enqueued), history filters, review notes, sign-up."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet

from ml.file_types import MEDIA_EXTENSIONS

from .archives import expand_archives
from .models import Item
from .staging import StagedUpload, display_name, stage_upload

# A .zip is expanded into its members first (detection.archives), each then checked like any upload.
ACCEPT_ATTRIBUTE = ",".join(MEDIA_EXTENSIONS + (".zip",))


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A list of files. Per-file checks happen in UploadForm, so one bad file does not sink the rest."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT_ATTRIBUTE, "multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        files = [f for f in (data if isinstance(data, (list, tuple)) else [data]) if f]
        if not files:
            raise ValidationError("Choose at least one image or video to upload.", code="required")
        if len(files) > settings.MAX_FILES_PER_UPLOAD:
            raise ValidationError(
                f"You chose {len(files)} files; upload at most {settings.MAX_FILES_PER_UPLOAD} at a time.",
                code="too_many",
            )
        return files


class UploadForm(forms.Form):
    """Validates every file and stages the good ones (detection.staging).

    After is_valid(): `staged` holds the accepted files, `rejections` one readable message per refused
    file. The form is valid when at least one file was accepted; the caller must either turn each staged
    file into an Item or call discard_staged().
    """

    files = MultipleFileField(label="Images or videos")

    def __init__(self, *args: Any, dropped: list[str] = (), owner: Any = None, **kwargs: Any) -> None:
        """dropped: names of files refused while the body was read (over the per-file size limit);
        owner: the uploading user, whose hourly rate and storage quota apply (detection.uploads)."""
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.staged: list[StagedUpload] = []
        self.rejections: list[str] = [
            f"{display_name(name)} is larger than the limit of {settings.MAX_UPLOAD_MB} MB per file."
            for name in dropped
        ]

    def clean_files(self) -> list[UploadedFile]:
        from .uploads import UploadAllowance

        files = self.cleaned_data["files"]
        uploads, refused_members = expand_archives(files)
        self.rejections.extend(refused_members)
        allowance = UploadAllowance(self.owner)
        for upload in uploads:
            refusal = allowance.refusal(display_name(upload.name), upload.size or 0)
            if refusal:
                self.rejections.append(refusal)
                continue
            try:
                self.staged.append(stage_upload(upload))
            except ValidationError as exc:
                self.rejections.extend(exc.messages)
                continue
            allowance.consume(self.staged[-1].size)
        if not self.staged:
            raise ValidationError(self.rejections)
        return files

    def discard_staged(self) -> None:
        for staged in self.staged:
            staged.discard()
        self.staged = []


class HistoryFilterForm(forms.Form):
    q = forms.CharField(required=False, label="File name", max_length=255)
    verdict = forms.ChoiceField(required=False, choices=[("", "Any verdict"), *Item.Verdict.choices])
    kind = forms.ChoiceField(required=False, choices=[("", "Images and videos"), *Item.Kind.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Item.Status.choices])

    def filter(self, items: QuerySet[Item]) -> QuerySet[Item]:
        """The items that match the valid filters (all of them when the form is unbound or invalid)."""
        if not self.is_valid():
            return items
        data = self.cleaned_data
        if data["q"]:
            items = items.filter(original_name__icontains=data["q"])
        if data["verdict"]:
            # What the owner is shown is what they filter by: a reviewer's decision counts.
            items = items.with_shown_verdict().filter(verdict_shown=data["verdict"])
        for name in ("kind", "status"):
            if data[name]:
                items = items.filter(**{name: data[name]})
        return items


class ReviewNoteForm(forms.Form):
    # The owner reads the note beside the decision, so a decision without one is refused.
    note = forms.CharField(
        required=True,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "required": True}),
        error_messages={"required": "Write a note: the owner sees it beside the decision."},
    )


class SignUpForm(UserCreationForm):
    """Username, e-mail (for password resets) and password."""

    email = forms.EmailField(
        required=True,
        help_text="Used only to reset your password.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class DeleteAccountForm(forms.Form):
    """Deleting an account removes every upload: ask for the password, so a left-open session cannot."""

    password = forms.CharField(
        label="Your password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, user, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError("That is not your password.", code="wrong_password")
        return password
